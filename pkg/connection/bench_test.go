package connection_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// Every benchmark runs against a connectiontest server on loopback, with
// the client NewAPIGatewayClient builds (keep-alive pool sized for the
// concurrency). Run them with
//
//	go test -run '^$' -bench . -benchmem ./pkg/connection/

type benchEnv struct {
	srv    *connectiontest.Server
	client *apigatewaymanagementapi.Client
	conns  *memory.Store
	m      *connection.Manager
}

func newBenchEnv(b *testing.B, opts ...connection.Option) *benchEnv {
	b.Helper()
	e := &benchEnv{srv: connectiontest.NewServer(), conns: memory.New()}
	e.client = e.srv.Client()
	e.m = connection.NewManager(e.conns, e.client, e.srv.URL, opts...)
	b.Cleanup(func() {
		_ = e.m.Shutdown(context.Background())
		e.srv.Close()
	})
	return e
}

var benchMsg = []byte(`{"type":"progress","request_id":"r-1","progress":42.5,"message":"working"}`)

// BenchmarkSend compares one Send through the manager (store lookup,
// breaker, metrics, SDK call) with the bare SDK PostToConnection it wraps,
// against the same server and client.
func BenchmarkSend(b *testing.B) {
	b.Run("bare-sdk", func(b *testing.B) {
		e := newBenchEnv(b)
		in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("L0SM9cOFvHcCIhw="), Data: benchMsg}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.client.PostToConnection(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("manager", func(b *testing.B) {
		e := newBenchEnv(b)
		ctx := context.Background()
		_ = e.conns.Save(ctx, &store.Connection{ConnectionID: "L0SM9cOFvHcCIhw=", UserID: "u"})
		b.ReportAllocs()
		for b.Loop() {
			if err := e.m.Send(ctx, "L0SM9cOFvHcCIhw=", benchMsg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSendOverhead alternates blocks of bare SDK calls and manager
// Sends in the same loop, so load from other processes hits both alike,
// and reports each one's mean wall time and process CPU time (client and
// server goroutines together, from getrusage) and the manager's overhead
// in percent. Run it with -benchtime=20000x or more.
func BenchmarkSendOverhead(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	_ = e.conns.Save(ctx, &store.Connection{ConnectionID: "L0SM9cOFvHcCIhw=", UserID: "u"})
	in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("L0SM9cOFvHcCIhw="), Data: benchMsg}
	bareCall := func() {
		if _, err := e.client.PostToConnection(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	managerCall := func() {
		if err := e.m.Send(ctx, "L0SM9cOFvHcCIhw=", benchMsg); err != nil {
			b.Fatal(err)
		}
	}
	const block = 100
	var wall, cpu [2]time.Duration
	n := 0
	for b.Loop() {
		for k, call := range []func(){bareCall, managerCall} {
			c0, t0 := processCPU(), time.Now()
			for range block {
				call()
			}
			wall[k] += time.Since(t0)
			cpu[k] += processCPU() - c0
		}
		n += block
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
	b.ReportMetric(us(wall[0]), "bare-us/op")
	b.ReportMetric(us(wall[1]), "manager-us/op")
	b.ReportMetric(100*(float64(wall[1])/float64(wall[0])-1), "wall-overhead-%")
	b.ReportMetric(us(cpu[0]), "bare-cpu-us/op")
	b.ReportMetric(us(cpu[1]), "manager-cpu-us/op")
	b.ReportMetric(100*(float64(cpu[1])/float64(cpu[0])-1), "cpu-overhead-%")
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("conn-%06d=", i)
	}
	return out
}

// median returns the median of ds in milliseconds.
func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / float64(time.Millisecond)
}

// BenchmarkBroadcast compares Broadcast (10 workers, the default) with a
// raw fan-out: 10 goroutines POSTing with plain net/http over a pooled
// transport, no SDK, no signing (a fixed Authorization header satisfies
// the test server). Each iteration runs both, one after the other, so
// load from other processes hits both alike. It reports the median time
// of each and the throughput ratio raw/manager: the cost of the SDK plus
// the manager.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		ids := benchIDs(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			transport := &http.Transport{MaxIdleConns: 10, MaxIdleConnsPerHost: 10}
			defer transport.CloseIdleConnections()
			client := &http.Client{Transport: transport}
			var managed, raw []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := e.m.Broadcast(ctx, ids, benchMsg); err != nil {
					b.Fatal(err)
				}
				managed = append(managed, time.Since(start))
				start = time.Now()
				rawFanOut(b, client, e.srv.URL, ids, 10)
				raw = append(raw, time.Since(start))
				e.srv.Reset()
			}
			b.ReportMetric(median(managed), "manager-median-ms")
			b.ReportMetric(median(raw), "raw-median-ms")
			b.ReportMetric(float64(n)/(median(managed)/1000), "manager-msgs/s")
			b.ReportMetric(median(managed)/median(raw), "raw/manager-throughput")
		})
	}
}

func rawFanOut(b *testing.B, client *http.Client, base string, ids []string, workers int) {
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range jobs {
				req, _ := http.NewRequest(http.MethodPost, base+"/@connections/"+id, bytes.NewReader(benchMsg))
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/execute-api/aws4_request")
				req.Header.Set("X-Amz-Date", "20260101T000000Z")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
}

// BenchmarkGetMetrics measures GetMetrics after 10,000 real Sends filled
// the counters and histograms.
func BenchmarkGetMetrics(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	ids := benchIDs(100)
	for _, id := range ids {
		_ = e.conns.Save(ctx, &store.Connection{ConnectionID: id})
	}
	for i := 0; i < 10000; i++ {
		if err := e.m.Send(ctx, ids[i%len(ids)], benchMsg); err != nil {
			b.Fatal(err)
		}
	}
	if got := e.m.Stats().SendsTotal; got != 10000 {
		b.Fatalf("sends = %d", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = e.m.GetMetrics()
	}
}

// BenchmarkBroadcastFaulted compares a Broadcast to 10,000 IDs where 5 %
// are gone and 10 % fail once with 500 (retried after the default
// 100 ms-base backoff) with a Broadcast to 10,000 other IDs that all
// succeed, alternating the two in each iteration so load from other
// processes hits both alike. The retries wait outside the workers, so
// the faulted run should take well under twice the all-success one.
func BenchmarkBroadcastFaulted(b *testing.B) {
	const n = 10000
	okIDs := benchIDs(n)
	faultIDs := make([]string, n)
	var gone []string
	for i := range faultIDs {
		faultIDs[i] = fmt.Sprintf("faulty-%06d=", i)
		if i%20 == 0 {
			gone = append(gone, faultIDs[i])
		}
	}
	e := newBenchEnv(b)
	e.srv.Disconnect(gone...)
	ctx := context.Background()
	var success, faulted []time.Duration
	for b.Loop() {
		for i, id := range faultIDs {
			if i%10 == 1 {
				e.srv.Script(id, 500)
			}
		}
		start := time.Now()
		if err := e.m.Broadcast(ctx, okIDs, benchMsg); err != nil {
			b.Fatal(err)
		}
		success = append(success, time.Since(start))
		start = time.Now()
		err := e.m.Broadcast(ctx, faultIDs, benchMsg)
		faulted = append(faulted, time.Since(start))
		var be *connection.BroadcastError
		if !errors.As(err, &be) || len(be.Failed) != len(gone) {
			b.Fatalf("err = %v", err)
		}
		e.srv.Reset()
	}
	b.ReportMetric(median(success), "success-median-ms")
	b.ReportMetric(median(faulted), "faulted-median-ms")
	b.ReportMetric(median(faulted)/median(success), "faulted/success")
}
