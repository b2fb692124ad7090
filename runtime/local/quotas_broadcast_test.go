package local_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/runtime/local"
)

// countingObserver counts @connections answers by status.
type countingObserver struct {
	mu     sync.Mutex
	status map[int]int
}

func (o *countingObserver) ConnectionOpened(local.ConnectionInfo)              {}
func (o *countingObserver) ConnectionClosed(local.ConnectionInfo, int, string) {}
func (o *countingObserver) RouteInvoked(local.RouteInvocation)                 {}
func (o *countingObserver) ManagementCalled(mc local.ManagementCall) {
	o.mu.Lock()
	o.status[mc.Status]++
	o.mu.Unlock()
}

// broadcastUnderQuota opens conns WebSocket clients on a gateway with
// quotas q (its connection rate raised so the clients can connect),
// sends rounds Broadcasts to all of them through the lean client
// (FastClient) and a Manager with its default pacing (or opts), and
// returns the calls answered by status. Every (connection, round) ends
// with exactly one outcome: the client read it once, or the Broadcast
// named the connection as failed and the client never read it.
func broadcastUnderQuota(tb testing.TB, q local.Quotas, conns, rounds int, opts ...connection.Option) (status map[int]int, failed int) {
	obs := &countingObserver{status: map[int]int{}}
	q.NewConnectionsPerSecond = 1e6
	connected := make(chan string, conns)
	onConnect := func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		connected <- ev.RequestContext.ConnectionID
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	gw, err := local.New(local.Config{Routes: map[string]local.Handler{local.RouteConnect: onConnect},
		Quotas: &q, Observer: obs, OutboundQueue: rounds + 1})
	if err != nil {
		tb.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The clients: each reads until closed and records what it got.
	var mu sync.Mutex
	got := make([]map[string]int, conns)
	received := 0
	var readers sync.WaitGroup
	clients := make([]*websocket.Conn, conns)
	for i := range conns {
		c, _, err := websocket.Dial(ctx, gw.URL(), nil)
		if err != nil {
			tb.Fatalf("dial %d: %v", i, err)
		}
		clients[i] = c
		got[i] = map[string]int{}
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				got[i][string(b)]++
				received++
				mu.Unlock()
			}
		}()
	}
	closeAll := func() {
		for _, c := range clients {
			c.CloseNow()
		}
	}
	defer closeAll()
	ids := make([]string, 0, conns)
	index := map[string]int{}
	for range conns {
		id := <-connected
		index[id] = len(ids)
		ids = append(ids, id)
	}

	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient: &http.Client{Transport: tr}}
	mgr := connection.NewManager(memory.New(), connection.NewFastClient(awsCfg, gw.ManagementEndpoint()), gw.ManagementEndpoint(), opts...)
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		mgr.Shutdown(sctx)
	}()
	failedIn := make([]map[int]bool, rounds) // round -> failed connection index
	for r := range rounds {
		failedIn[r] = map[int]bool{}
		err := mgr.Broadcast(ctx, ids, strconv.Itoa(r))
		var be *connection.BroadcastError
		switch {
		case err == nil:
		case errors.As(err, &be):
			for id := range be.Failed {
				failedIn[r][index[id]] = true
				failed++
			}
		default:
			tb.Fatalf("broadcast %d: %v", r, err)
		}
	}
	// Every delivered call reaches its client; then the clients close.
	obs.mu.Lock()
	delivered := obs.status[http.StatusOK]
	obs.mu.Unlock()
	for ctx.Err() == nil {
		mu.Lock()
		n := received
		mu.Unlock()
		if n >= delivered {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	closeAll()
	readers.Wait()
	for i := range conns {
		for r := range rounds {
			want := 1
			if failedIn[r][i] {
				want = 0
			}
			if n := got[i][strconv.Itoa(r)]; n != want {
				tb.Fatalf("connection %d got round %d %d times, want %d (failed in the Broadcast: %v)", i, r, n, want, failedIn[r][i])
			}
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	status = make(map[int]int, len(obs.status))
	for k, v := range obs.status {
		status[k] = v
	}
	return status, failed
}

// TestBroadcastUnderAWSQuotas: 20,000 @connections calls (a Broadcast to
// 1,000 connections, 20 times) through the lean client with the Manager's
// default pacing against AWS's request quota: every connection gets every
// round once, and at most 1 % of the calls are answered 429. Under the
// race detector, which slows each call about tenfold, it sends 4,000
// (500 connections, 8 rounds) to stay within the suite's time budget.
func TestBroadcastUnderAWSQuotas(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 calls")
	}
	conns, rounds := 1000, 20
	if raceEnabled {
		conns, rounds = 500, 8
	}
	start := time.Now()
	st, failed := broadcastUnderQuota(t, local.Quotas{}, conns, rounds)
	if failed != 0 {
		t.Errorf("%d sends failed", failed)
	}
	calls := 0
	for _, n := range st {
		calls += n
	}
	if st[http.StatusOK] != conns*rounds {
		t.Errorf("%d calls answered 200, want %d (%v)", st[http.StatusOK], conns*rounds, st)
	}
	if limited := st[http.StatusTooManyRequests]; limited*100 > calls {
		t.Errorf("%d of %d calls answered 429, more than 1 %%", limited, calls)
	}
	t.Logf("%d connections x %d rounds in %v; calls by status: %v", conns, rounds, time.Since(start).Round(time.Millisecond), st)
}

// TestBroadcastThrottled: against a quota this machine exceeds many times
// over (200 calls/s, burst 10), the gateway answers 429
// LimitExceededException; the Manager's default Limiter (8,000/s) comes
// down to just under the quota within the first round, measured against
// what the gateway admits, and each throttled call is retried once the
// Limiter has lowered its rate. So with the default four attempts every
// (connection, round) is delivered exactly once (broadcastUnderQuota
// checks each), no send fails, and 429s are a small share of the calls.
func TestBroadcastThrottled(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of calls")
	}
	start := time.Now()
	st, failed := broadcastUnderQuota(t, local.Quotas{RequestsPerSecond: 200, RequestsBurst: 10}, 100, 6)
	calls := st[http.StatusOK] + st[http.StatusTooManyRequests]
	if failed != 0 || st[http.StatusOK] != 600 {
		t.Errorf("%d of 600 sends failed; calls by status %v", failed, st)
	}
	if limited := st[http.StatusTooManyRequests]; limited == 0 || limited*100 > 15*calls {
		t.Errorf("%d of %d calls answered 429, want some and at most 15 %%", limited, calls)
	}
	t.Logf("600 sends in %v; calls by status: %v", time.Since(start).Round(time.Millisecond), st)
}

// BenchmarkBroadcastUnderAWSQuotas sends 20,000 calls (1,000 connections,
// 20 rounds) per iteration against AWS's quotas and reports the share
// answered 429, with the Manager's default pacing ("paced") and without
// any ("unpaced"), which shows what the pacing saves.
func BenchmarkBroadcastUnderAWSQuotas(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []connection.Option
	}{
		{"paced", nil},
		{"unpaced", []connection.Option{connection.WithLimiter(nil)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var calls, limited int
			for b.Loop() {
				st, _ := broadcastUnderQuota(b, local.Quotas{}, 1000, 20, tc.opts...)
				for status, n := range st {
					calls += n
					if status == http.StatusTooManyRequests {
						limited += n
					}
				}
			}
			b.ReportMetric(100*float64(limited)/float64(calls), "%429")
			b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
		})
	}
}
