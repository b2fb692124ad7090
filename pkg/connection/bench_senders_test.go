package connection_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// benchWorkers is the concurrency of every sender in BenchmarkSenders.
const benchWorkers = 32

// sender is one way of fanning a message out to ids.
type benchSender struct {
	name string
	send func(ctx context.Context, ids []string, msg []byte) error
}

// BenchmarkSenders compares four senders at equal concurrency
// (benchWorkers) against one @connections server in a separate process:
//
//   - sdk:    Manager.Broadcast over the SDK client (NewAPIGatewayClient)
//   - lean:   Manager.Broadcast over NewFastClient
//   - raw:    plain net/http POSTs, unsigned (a fixed Authorization header)
//   - signed: plain net/http POSTs signed with the SDK's v4 signer, the
//     physical floor of a signed call (payload hashed once per message)
//
// Each iteration runs all four, in an order rotated per iteration, so load
// from other processes hits them alike. It reports each one's median
// msgs/s, client CPU µs per message (getrusage of this process only: the
// server is another process) and heap allocations per message, and the
// issue's ratios. The managers' pacing is unlimited (adaptive), so it
// costs what it costs without capping the rate. Run it with
//
//	GOMAXPROCS=2 go test -run '^$' -bench Senders -benchtime 5x -cpu 2,1 ./pkg/connection/
func BenchmarkSenders(b *testing.B) {
	url := startBenchServer(b)
	cfg := aws.Config{Region: "us-east-1", Credentials: testCreds.Credentials}
	for _, n := range []int{100, 1000, 10000} {
		ids := benchIDs(n)
		b.Run(fmt.Sprintf("ids=%d", n), func(b *testing.B) {
			senders := newBenchSenders(b, cfg, url)
			ctx := context.Background()
			type acc struct {
				rates       []float64
				cpu, wall   time.Duration
				allocs, msg uint64
			}
			accs := make([]acc, len(senders))
			// Warm every pool first.
			for _, s := range senders {
				if err := s.send(ctx, ids[:min(n, benchWorkers*2)], benchMsg); err != nil {
					b.Fatal(err)
				}
			}
			iter := 0
			for b.Loop() {
				for k := range senders {
					i := (k + iter) % len(senders)
					s := senders[i]
					a0, c0, t0 := heapAllocs(), processCPU(), time.Now()
					if err := s.send(ctx, ids, benchMsg); err != nil {
						b.Fatalf("%s: %v", s.name, err)
					}
					wall := time.Since(t0)
					accs[i].cpu += processCPU() - c0
					accs[i].allocs += heapAllocs() - a0
					accs[i].wall += wall
					accs[i].msg += uint64(n)
					accs[i].rates = append(accs[i].rates, float64(n)/wall.Seconds())
				}
				iter++
			}
			med := make([]float64, len(senders))
			for i, s := range senders {
				a := accs[i]
				med[i] = medianOf(a.rates)
				b.ReportMetric(med[i], s.name+"-msgs/s")
				b.ReportMetric(float64(a.cpu.Microseconds())/float64(a.msg), s.name+"-cpu-us/msg")
				b.ReportMetric(float64(a.allocs)/float64(a.msg), s.name+"-allocs/msg")
			}
			// senders: 0 sdk, 1 lean, 2 raw, 3 signed.
			b.ReportMetric(med[1]/med[3], "lean/signed")
			b.ReportMetric(med[1]/med[0], "lean/sdk")
			b.ReportMetric(float64(accs[1].allocs)/float64(accs[0].allocs), "lean/sdk-allocs")
		})
	}
}

func newBenchSenders(b *testing.B, cfg aws.Config, endpoint string) []benchSender {
	b.Helper()
	newTransport := func() *http.Transport {
		tr := &http.Transport{MaxIdleConns: benchWorkers, MaxIdleConnsPerHost: benchWorkers, IdleConnTimeout: time.Minute}
		b.Cleanup(tr.CloseIdleConnections)
		return tr
	}
	manager := func(client connection.APIGatewayClient) *connection.Manager {
		m := connection.NewManager(memory.New(), client, endpoint, connection.WithBroadcastWorkers(benchWorkers),
			connection.WithLimiter(connection.NewLimiter(connection.LimiterConfig{})))
		b.Cleanup(func() { _ = m.Shutdown(context.Background()) })
		return m
	}
	sdkTr := newTransport()
	sdk := manager(connection.NewAPIGatewayClient(cfg, endpoint, func(o *apigatewaymanagementapi.Options) {
		o.HTTPClient = &http.Client{Transport: sdkTr}
	}))
	lean := manager(connection.NewFastClient(cfg, endpoint, connection.WithFastPoolSize(benchWorkers)))
	rawClient := &http.Client{Transport: newTransport()}
	signedClient := &http.Client{Transport: newTransport()}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	signer := v4.NewSigner()
	target := func(id string) string { return endpoint + "/@connections/" + httpbinding.EscapePath(id, true) }
	return []benchSender{
		{"sdk", func(ctx context.Context, ids []string, msg []byte) error { return sdk.Broadcast(ctx, ids, msg) }},
		{"lean", func(ctx context.Context, ids []string, msg []byte) error { return lean.Broadcast(ctx, ids, msg) }},
		{"raw", func(ctx context.Context, ids []string, msg []byte) error {
			return fanOut(ids, func(id string) error {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, target(id), bytes.NewReader(msg))
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/execute-api/aws4_request")
				req.Header.Set("X-Amz-Date", "20260101T000000Z")
				return do(rawClient, req)
			})
		}},
		{"signed", func(ctx context.Context, ids []string, msg []byte) error {
			sum := sha256.Sum256(msg)
			hash := hex.EncodeToString(sum[:])
			return fanOut(ids, func(id string) error {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, target(id), bytes.NewReader(msg))
				if err != nil {
					return err
				}
				if err := signer.SignHTTP(ctx, creds, req, hash, "execute-api", cfg.Region, time.Now()); err != nil {
					return err
				}
				return do(signedClient, req)
			})
		}},
	}
}

// fanOut calls post for every ID from benchWorkers goroutines.
func fanOut(ids []string, post func(id string) error) error {
	var next atomic.Int64
	errs := make([]error, benchWorkers)
	var wg sync.WaitGroup
	for w := range benchWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				if err := post(ids[i]); err != nil && errs[w] == nil {
					errs[w] = err
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func do(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf [512]byte
	for {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// heapAllocs is the number of heap objects allocated so far, cheaper to
// read than runtime.MemStats (no stop-the-world).
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// BenchmarkSendOverheadLean alternates blocks of bare FastClient
// PostToConnection calls and Manager Sends through the same FastClient
// (store lookup, breaker, pacing, metrics, Shutdown's cancellation and the
// attempt timeout), against the server process, in an order rotated per
// iteration, and reports each one's wall and client CPU time per call and
// the manager's overhead in percent. A third block, the bare call under
// the one cancellable context the manager derives per Send, shows how much
// of that is net/http's cost of a context it can cancel, which any
// caller's request context costs too. Run it with -benchtime=200x (100
// calls of each per iteration) or more.
func BenchmarkSendOverheadLean(b *testing.B) {
	endpoint := startBenchServer(b)
	fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: testCreds.Credentials}, endpoint)
	st := memory.New()
	m := connection.NewManager(st, fc, endpoint)
	b.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	ctx := context.Background()
	const id = "L0SM9cOFvHcCIhw="
	if err := st.Save(ctx, &store.Connection{ConnectionID: id, UserID: "u"}); err != nil {
		b.Fatal(err)
	}
	in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: benchMsg}
	bare := func() {
		if _, err := fc.PostToConnection(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	managed := func() {
		if err := m.Send(ctx, id, benchMsg); err != nil {
			b.Fatal(err)
		}
	}
	// The bare call under the one context the manager derives for each
	// Send: what a cancellable context alone costs net/http.
	bareCtx := func() {
		cctx, cancel := context.WithCancelCause(ctx)
		if _, err := fc.PostToConnection(cctx, in); err != nil {
			b.Fatal(err)
		}
		cancel(nil)
	}
	const block = 100
	calls := []func(){bare, managed, bareCtx}
	var wall, cpu [3]time.Duration
	var allocs [3]uint64
	n, iter := 0, 0
	for b.Loop() {
		for j := range calls {
			k := (j + iter) % len(calls)
			a0, c0, t0 := heapAllocs(), processCPU(), time.Now()
			for range block {
				calls[k]()
			}
			wall[k] += time.Since(t0)
			cpu[k] += processCPU() - c0
			allocs[k] += heapAllocs() - a0
		}
		n += block
		iter++
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
	pct := func(x, base time.Duration) float64 { return 100 * (float64(x)/float64(base) - 1) }
	b.ReportMetric(us(wall[0]), "bare-us/op")
	b.ReportMetric(us(wall[1]), "manager-us/op")
	b.ReportMetric(pct(wall[1], wall[0]), "wall-overhead-%")
	b.ReportMetric(us(cpu[0]), "bare-cpu-us/op")
	b.ReportMetric(us(cpu[1]), "manager-cpu-us/op")
	b.ReportMetric(pct(cpu[1], cpu[0]), "cpu-overhead-%")
	b.ReportMetric(float64(allocs[0])/float64(n), "bare-allocs/op")
	b.ReportMetric(float64(allocs[1])/float64(n), "manager-allocs/op")
	b.ReportMetric(float64(allocs[2])/float64(n), "bare-ctx-allocs/op")
	b.ReportMetric(pct(cpu[2], cpu[0]), "bare-ctx-cpu-overhead-%")
	b.ReportMetric(pct(wall[2], wall[0]), "bare-ctx-wall-overhead-%")
	b.ReportMetric(pct(cpu[1], cpu[2]), "cpu-overhead-vs-ctx-%")
	b.ReportMetric(pct(wall[1], wall[2]), "wall-overhead-vs-ctx-%")
}
