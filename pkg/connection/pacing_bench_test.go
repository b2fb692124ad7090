package connection_test

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// callLog records when each HTTP answer came and its status, as a
// RoundTripper under the FastClient. Calls are logged in the order they
// end, stamped with when they started.
type callLog struct {
	base  http.RoundTripper
	start time.Time
	mu    sync.Mutex
	calls []loggedCall
}

type loggedCall struct {
	at     time.Duration
	status int
}

func (l *callLog) RoundTrip(r *http.Request) (*http.Response, error) {
	at := time.Since(l.start) // when the call left the Limiter and the client
	resp, err := l.base.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	l.mu.Lock()
	l.calls = append(l.calls, loggedCall{at: at, status: status})
	l.mu.Unlock()
	return resp, err
}

// BenchmarkPacing broadcasts through a Manager on the FastClient to a
// connectiontest server with an account quota (SetRateLimit), one
// Broadcast per iteration, and reports how it paced itself:
//
//   - budget=2000: the manager's Limiter at 2,000/s with a 500 burst
//     against a server limited to 2,000/s with a 500 burst, 20,000 IDs;
//   - unlimited: no budget (adaptive only), same server and IDs; it
//     reports when the adaptive rate first fell below the server's limit
//     and the 429 share of the calls after 2 s;
//   - unlimited+5xx: the same with 10 % random server errors on top;
//   - budget=10000: 100,000 IDs at a 10,000/s budget (burst 5,000) to a
//     server with no limit: the busiest 1 s window must stay within
//     rate + burst, and the whole takes about 10 s.
//
// Every variant checks that each ID was delivered exactly once. Run it
// with
//
//	go test -run '^$' -bench Pacing -benchtime 1x ./pkg/connection/
func BenchmarkPacing(b *testing.B) {
	for _, tc := range []struct {
		name               string
		ids                int
		serverRate         float64
		serverBurst        int
		budget             float64
		burst              int
		fail               float64
		workers            int
		checkBurstAboveCap bool
	}{
		{name: "budget=2000", ids: 20000, serverRate: 2000, serverBurst: 500, budget: 2000, burst: 500, workers: 32},
		{name: "unlimited", ids: 20000, serverRate: 2000, serverBurst: 500, workers: 32},
		{name: "unlimited+5xx", ids: 20000, serverRate: 2000, serverBurst: 500, fail: 0.10, workers: 32},
		{name: "budget=10000", ids: 100000, budget: 10000, burst: 5000, workers: 64, checkBurstAboveCap: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ids := benchIDs(tc.ids)
			for b.Loop() {
				srv := connectiontest.NewServer()
				srv.SetRateLimit(tc.serverRate, tc.serverBurst)
				srv.FailRandomly(tc.fail)
				log := &callLog{base: &http.Transport{MaxIdleConns: tc.workers, MaxIdleConnsPerHost: tc.workers}}
				fc := connection.NewFastClient(aws.Config{Region: "us-east-1", Credentials: testCreds.Credentials}, srv.URL,
					connection.WithFastHTTPClient(&http.Client{Transport: log}))
				lim := connection.NewLimiter(connection.LimiterConfig{Rate: tc.budget, Burst: tc.burst})
				m := connection.NewManager(memory.New(), fc, srv.URL, connection.WithLimiter(lim),
					connection.WithBroadcastWorkers(tc.workers),
					connection.WithRetry(connection.RetryPolicy{MaxRetries: 20, BaseDelay: 50 * time.Millisecond, MaxDelay: time.Second}))

				// Sample the adaptive rate every 10 ms.
				type sample struct {
					at   time.Duration
					rate float64
				}
				var samples []sample
				stop := make(chan struct{})
				sampled := make(chan struct{})
				log.start = time.Now()
				go func() {
					defer close(sampled)
					t := time.NewTicker(10 * time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							return
						case <-t.C:
							samples = append(samples, sample{time.Since(log.start), lim.Stats().Rate})
						}
					}
				}()
				err := m.Broadcast(context.Background(), ids, benchMsg)
				elapsed := time.Since(log.start)
				close(stop)
				<-sampled
				_ = m.Shutdown(context.Background())
				log.base.(*http.Transport).CloseIdleConnections()
				received := srv.ReceivedBy()
				srv.Close()
				if err != nil {
					b.Fatalf("Broadcast: %v", err)
				}
				for _, id := range ids {
					if received[id] != 1 {
						b.Fatalf("%s received %d times", id, received[id])
					}
				}

				var total, throttled, after2s, throttledAfter2s int
				for _, c := range log.calls {
					total++
					late := c.at >= 2*time.Second
					if late {
						after2s++
					}
					if c.status == http.StatusTooManyRequests {
						throttled++
						if late {
							throttledAfter2s++
						}
					}
				}
				b.ReportMetric(elapsed.Seconds(), "s/broadcast")
				b.ReportMetric(float64(tc.ids)/elapsed.Seconds(), "delivered/s")
				b.ReportMetric(100*float64(throttled)/float64(total), "429-%")
				b.ReportMetric(float64(total), "calls")
				if tc.budget == 0 {
					converged := -1.0
					for _, s := range samples {
						if s.rate > 0 && s.rate < tc.serverRate {
							converged = s.at.Seconds()
							break
						}
					}
					b.ReportMetric(converged, "s-to-below-limit")
					if after2s > 0 {
						b.ReportMetric(100*float64(throttledAfter2s)/float64(after2s), "429-%-after-2s")
					}
				}
				if tc.checkBurstAboveCap {
					// The busiest 1 s window of calls, against rate + burst.
					slices.SortFunc(log.calls, func(a, b loggedCall) int { return cmp.Compare(a.at, b.at) })
					busiest, j := 0, 0
					for i := range log.calls {
						for log.calls[i].at-log.calls[j].at >= time.Second {
							j++
						}
						busiest = max(busiest, i-j+1)
					}
					b.ReportMetric(float64(busiest), "busiest-1s-calls")
					// A token bucket allows at most rate×1s + burst per
					// second; calls granted just before a window may start
					// in it (the workers are scheduled after their token),
					// hence the workers' slack.
					if limit := int(tc.budget) + tc.burst + tc.workers; busiest > limit {
						b.Errorf("busiest 1 s window had %d calls, above rate+burst+workers %d", busiest, limit)
					}
				}
				if tc.fail > 0 {
					b.ReportMetric(float64(tc.ids), "delivered-once")
				}
			}
		})
	}
}
