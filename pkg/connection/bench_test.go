package connection_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
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

func benchIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("conn-%06d=", i)
	}
	return out
}

// reportMedian adds the median iteration time, in ms, to the output.
func reportMedian(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/float64(time.Millisecond), "median-ms")
}

// BenchmarkBroadcast compares Broadcast (10 workers, the default) with a
// raw fan-out: 10 goroutines POSTing with plain net/http over a pooled
// transport, no SDK, no signing (a fixed Authorization header satisfies
// the test server). The ratio is the cost of the SDK plus the manager.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		ids := benchIDs(n)
		b.Run(fmt.Sprintf("manager/%d", n), func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			var ds []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if err := e.m.Broadcast(ctx, ids, benchMsg); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
				e.srv.Reset()
			}
			reportMedian(b, ds)
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(fmt.Sprintf("raw-http/%d", n), func(b *testing.B) {
			e := newBenchEnv(b)
			const workers = 10
			transport := &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers}
			defer transport.CloseIdleConnections()
			client := &http.Client{Transport: transport}
			var ds []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				rawFanOut(b, client, e.srv.URL, ids, workers)
				ds = append(ds, time.Since(start))
				e.srv.Reset()
			}
			reportMedian(b, ds)
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
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
// 100 ms-base backoff) with the same Broadcast when everything succeeds.
// The retries wait outside the workers, so the faulted run should take
// well under twice the all-success one.
func BenchmarkBroadcastFaulted(b *testing.B) {
	const n = 10000
	ids := benchIDs(n)
	b.Run("all-success", func(b *testing.B) {
		e := newBenchEnv(b)
		ctx := context.Background()
		var ds []time.Duration
		for b.Loop() {
			start := time.Now()
			if err := e.m.Broadcast(ctx, ids, benchMsg); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			e.srv.Reset()
		}
		reportMedian(b, ds)
	})
	b.Run("faulted", func(b *testing.B) {
		e := newBenchEnv(b)
		ctx := context.Background()
		var gone []string
		for i, id := range ids {
			if i%20 == 0 {
				gone = append(gone, id)
			}
		}
		e.srv.Disconnect(gone...)
		var ds []time.Duration
		for b.Loop() {
			b.StopTimer()
			for i, id := range ids {
				if i%10 == 1 {
					e.srv.Script(id, 500)
				}
			}
			b.StartTimer()
			start := time.Now()
			err := e.m.Broadcast(ctx, ids, benchMsg)
			ds = append(ds, time.Since(start))
			var be *connection.BroadcastError
			if !errors.As(err, &be) || len(be.Failed) != len(gone) {
				b.Fatalf("err = %v", err)
			}
			e.srv.Reset()
		}
		reportMedian(b, ds)
	})
}
