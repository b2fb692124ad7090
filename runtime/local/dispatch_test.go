package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// blocker is a route whose invocations each wait for a token on release
// (or for their context to end), after announcing themselves on started.
type blocker struct {
	started chan string // the message body, as each invocation starts
	release chan struct{}
	running atomic.Int32
	maxRun  atomic.Int32
	// ctxErrs holds each invocation's ctx.Err() as it was after release.
	mu      sync.Mutex
	ctxErrs []error
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{}, 100)}
}

func (b *blocker) handler(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	n := b.running.Add(1)
	defer b.running.Add(-1)
	for {
		m := b.maxRun.Load()
		if n <= m || b.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	b.started <- ev.Body
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.ctxErrs = append(b.ctxErrs, ctx.Err())
	b.mu.Unlock()
	return events.APIGatewayProxyResponse{StatusCode: 200, Body: "done " + ev.Body}, nil
}

func nextBody(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no invocation started within 10 s")
		return ""
	}
}

func send(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctxT(t), websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_, b, err := c.Read(ctxT(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// A message to a fast route is answered while the connection's earlier
// message to a slow route is still running: API Gateway invokes each
// message on its own, and so does the gateway. The observer sees both
// invocations with their responses.
func TestSlowMessageDoesNotHoldBackTheNext(t *testing.T) {
	rec := newRecorder()
	slow := newBlocker()
	w := newWatcher()
	routes := rec.routes()
	routes["slow"] = slow.handler
	routes["fast"] = func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "fast answered"}, nil
	}
	gw := start(t, local.Config{Routes: routes, TwoWayRoutes: []string{"slow", "fast"}, Observer: w})
	c, _ := connect(t, gw, rec)

	send(t, c, map[string]string{"action": "slow"})
	nextBody(t, slow.started)
	send(t, c, map[string]string{"action": "fast"})
	// slow is still blocked on its release: only the fast answer can come.
	if got := readText(t, c); got != "fast answered" {
		t.Fatalf("first answer %q, want the fast route's", got)
	}
	if n := slow.running.Load(); n != 1 {
		t.Fatalf("slow invocations running: %d, want 1", n)
	}
	slow.release <- struct{}{}
	if got := readText(t, c); got != `done {"action":"slow"}` {
		t.Fatalf("second answer %q, want the slow route's", got)
	}

	// Both invocations reach the observer with their responses, the fast
	// one first.
	var keys []string
	for range 20 {
		w.mu.Lock()
		keys = keys[:0]
		for _, r := range w.routes {
			if r.RouteKey == "slow" || r.RouteKey == "fast" {
				keys = append(keys, r.RouteKey+"="+r.Response.Body)
			}
		}
		w.mu.Unlock()
		if len(keys) == 2 {
			break
		}
		<-w.changed
	}
	if fmt.Sprint(keys) != `[fast=fast answered slow=done {"action":"slow"}]` {
		t.Errorf("observed invocations %v", keys)
	}
}

// At Config.MaxMessagesInFlight messages running, the gateway stops
// reading the connection: the next message is dispatched only once one
// finishes, and nothing is dropped.
func TestMessagesInFlightBoundAppliesBackpressure(t *testing.T) {
	const bound = 2
	rec := newRecorder()
	b := newBlocker()
	routes := rec.routes()
	routes[local.RouteDefault] = b.handler
	gw := start(t, local.Config{Routes: routes, TwoWayRoutes: []string{local.RouteDefault}, MaxMessagesInFlight: bound})
	c, _ := connect(t, gw, rec)
	// The client's reader answers the gateway's frames; its results are
	// checked at the end.
	answers := make(chan string, 10)
	go func() {
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				close(answers)
				return
			}
			answers <- string(data)
		}
	}()

	const total = bound + 2
	for i := range total {
		send(t, c, map[string]int{"n": i})
	}
	started := map[string]bool{}
	for range bound {
		started[nextBody(t, b.started)] = true
	}
	// The gateway's reader is parked on the bound, so it reads nothing,
	// not even a ping: the ping cannot be answered while every slot is
	// taken. (A correct gateway never answers it; the short wait only
	// limits how long the test looks.)
	pctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	err := c.Ping(pctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping with every slot taken: %v, want no answer", err)
	}
	select {
	case body := <-b.started:
		t.Fatalf("message %s dispatched beyond the bound", body)
	default:
	}

	// Each release frees one slot, and one more message starts.
	for range total - bound {
		b.release <- struct{}{}
		started[nextBody(t, b.started)] = true
	}
	for range bound {
		b.release <- struct{}{}
	}
	for i := range total {
		if !started[fmt.Sprintf(`{"n":%d}`, i)] {
			t.Errorf("message %d never dispatched (started: %v)", i, started)
		}
	}
	got := map[string]bool{}
	for range total {
		got[<-answers] = true
	}
	if len(got) != total {
		t.Errorf("answers %v, want one per message", got)
	}
	if m := b.maxRun.Load(); m != bound {
		t.Errorf("at most %d messages ran at once, want %d", m, bound)
	}
	if err := c.Ping(ctxT(t)); err != nil {
		t.Errorf("ping once the slots are free: %v", err)
	}
}

// $disconnect runs exactly once, at once, while the connection's messages
// are still being handled (API Gateway does not wait for them either); the
// handlers keep a valid context to the end, and Shutdown waits for them.
func TestDisconnectDoesNotWaitForMessagesInFlight(t *testing.T) {
	rec := newRecorder()
	b := newBlocker()
	routes := rec.routes()
	routes[local.RouteDefault] = b.handler
	gw, err := local.New(local.Config{Routes: routes, TwoWayRoutes: []string{local.RouteDefault}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	c, id := connect(t, gw, rec)
	const n = 3
	for i := range n {
		send(t, c, map[string]int{"n": i})
	}
	for range n {
		nextBody(t, b.started)
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id {
		t.Fatalf("$disconnect for %s, want %s", ev.RequestContext.ConnectionID, id)
	}
	if r := b.running.Load(); r != n {
		t.Fatalf("%d handlers running at $disconnect, want %d", r, n)
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		shut <- gw.Shutdown(ctx)
	}()
	// Once Shutdown has closed the listener, it is still waiting for the
	// handlers, which are still blocked.
	for {
		dctx, cancel := context.WithTimeout(ctxT(t), time.Second)
		dc, _, err := websocket.Dial(dctx, gw.URL(), nil)
		cancel()
		if err != nil {
			break
		}
		dc.CloseNow()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with %d handlers running", err, b.running.Load())
	default:
	}
	for range n {
		b.release <- struct{}{}
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r := b.running.Load(); r != 0 {
		t.Errorf("%d handlers still running after Shutdown", r)
	}
	b.mu.Lock()
	for i, err := range b.ctxErrs {
		if err != nil {
			t.Errorf("handler %d: context ended (%v) after the client left", i, err)
		}
	}
	b.mu.Unlock()
	if d := rec.disconnectsOf(id); d != 1 {
		t.Errorf("$disconnect ran %d times", d)
	}
}

func TestNegativeMessagesInFlightIsInvalid(t *testing.T) {
	if _, err := local.New(local.Config{MaxMessagesInFlight: -1}); !errors.Is(err, local.ErrInvalidConfig) {
		t.Errorf("New: %v, want ErrInvalidConfig", err)
	}
}

// BenchmarkMessageDispatch measures one client's messages through the
// gateway to a two-way echo route and back: sent one at a time (each
// waits for its answer) and pipelined (window messages in flight), with
// the messages handled concurrently (the default bound) or one at a time
// (MaxMessagesInFlight 1).
//
//	go test -run '^$' -bench MessageDispatch -benchtime 2s ./runtime/local/
func BenchmarkMessageDispatch(b *testing.B) {
	echo := func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body}, nil
	}
	for _, bound := range []int{1, local.DefaultMaxMessagesInFlight} {
		for _, window := range []int{1, 32} {
			b.Run(fmt.Sprintf("inflight=%d/window=%d", bound, window), func(b *testing.B) {
				gw, err := local.New(local.Config{Routes: map[string]local.Handler{local.RouteDefault: echo}, TwoWayRoutes: []string{local.RouteDefault}, MaxMessagesInFlight: bound})
				if err != nil {
					b.Fatal(err)
				}
				if err := gw.Start(); err != nil {
					b.Fatal(err)
				}
				defer gw.Close()
				ctx := context.Background()
				c, _, err := websocket.Dial(ctx, gw.URL(), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.CloseNow()
				msg := []byte(`{"action":"echo","text":"hello"}`)
				sent := 0
				b.ResetTimer()
				for i := range b.N {
					for sent < b.N && sent-i < window {
						if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
							b.Fatal(err)
						}
						sent++
					}
					if _, _, err := c.Read(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
