package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// blockingRoute is a handler that ignores its context, as a Lambda function
// that runs on past API Gateway's integration timeout: it answers body
// only once release is closed, and closes returned when it has.
type blockingRoute struct {
	started, release, returned chan struct{}
}

func newBlockingRoute() *blockingRoute {
	return &blockingRoute{started: make(chan struct{}, 1), release: make(chan struct{}), returned: make(chan struct{})}
}

func (b *blockingRoute) handler(status int, body string) local.Handler {
	return func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		defer close(b.returned)
		b.started <- struct{}{}
		<-b.release
		return events.APIGatewayProxyResponse{StatusCode: status, Body: body}, nil
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctxT(t).Done():
		t.Fatalf("%s did not happen", what)
	}
}

// A message route whose handler runs past the route's own timeout: the
// client gets API Gateway's timeout frame at that timeout (not at the
// gateway-wide 29 s), keeps its socket, and never gets the late answer.
func TestRouteTimeoutAnswersEndpointRequestTimedOut(t *testing.T) {
	rec := newRecorder()
	routes := rec.routes()
	slow := newBlockingRoute()
	routes["slow"] = slow.handler(200, "late")
	routes["echo"] = rec.handler("pong")
	obs := &invocationLog{}
	gw := start(t, local.Config{
		Routes:        routes,
		TwoWayRoutes:  []string{"slow", "echo"},
		RouteTimeouts: map[string]time.Duration{"slow": 50 * time.Millisecond},
		Observer:      obs,
	})
	c, id := connect(t, gw, rec)
	if err := c.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"slow"}`)); err != nil {
		t.Fatal(err)
	}
	f := readGatewayFrame(t, c)
	if f.Message != "Endpoint request timed out" || f.ConnectionID != id || f.RequestID == "" {
		t.Fatalf("frame %+v, want Endpoint request timed out for %s", f, id)
	}
	// The handler is still running: the gateway stopped waiting, it did
	// not stop the handler. Its answer, once given, is dropped.
	select {
	case <-slow.returned:
		t.Fatal("the handler ended with the gateway's timeout")
	default:
	}
	close(slow.release)
	waitClosed(t, slow.returned, "the slow handler's return")
	for range 2 {
		if err := c.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"echo"}`)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "pong" {
			t.Fatalf("after the timeout: %q, %v (want pong, not the late answer)", b, err)
		}
	}
	inv := obs.find("slow")
	if inv == nil || inv.Status != 500 || !errors.Is(inv.Err, context.DeadlineExceeded) {
		t.Errorf("observed %+v, want status 500 and context.DeadlineExceeded", inv)
	}
}

// $connect past its route's timeout: the upgrade is answered 504 as API
// Gateway answers an integration timeout, $disconnect does not run, and
// the next connection is served.
func TestConnectRouteTimeoutAnswers504(t *testing.T) {
	rec := newRecorder()
	routes := rec.routes()
	slow := newBlockingRoute()
	var calls atomic.Int32
	slowConnect := slow.handler(200, "")
	routes[local.RouteConnect] = func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if calls.Add(1) == 1 {
			return slowConnect(ctx, ev)
		}
		return rec.handler("")(ctx, ev)
	}
	gw := start(t, local.Config{Routes: routes, RouteTimeouts: map[string]time.Duration{local.RouteConnect: 50 * time.Millisecond}})

	c, resp, err := websocket.Dial(ctxT(t), gw.URL(), nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("the upgrade succeeded past $connect's timeout")
	}
	if resp == nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("dial: %v, response %+v; want 504", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m["message"] != "Endpoint request timed out" {
		t.Errorf("body %s, want {\"message\":\"Endpoint request timed out\"}", body)
	}
	close(slow.release)
	waitClosed(t, slow.returned, "the slow $connect's return")

	c2, id := connect(t, gw, rec)
	if err := c2.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, rec.discs); ev.RequestContext.ConnectionID != id {
		t.Errorf("$disconnect for %s, want only the connection that opened (%s)", ev.RequestContext.ConnectionID, id)
	}
}

// $disconnect past its route's timeout: the gateway stops waiting for it
// and ends the connection (the Observer hears of it) while the handler is
// still running; the handler is not stopped.
func TestDisconnectRouteTimeoutIsNotWaitedFor(t *testing.T) {
	rec := newRecorder()
	routes := rec.routes()
	slow := newBlockingRoute()
	routes[local.RouteDisconnect] = slow.handler(200, "")
	obs := &invocationLog{closed: make(chan struct{}, 1)}
	gw := start(t, local.Config{Routes: routes, Observer: obs, RouteTimeouts: map[string]time.Duration{local.RouteDisconnect: 50 * time.Millisecond}})
	c, _ := connect(t, gw, rec)
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, slow.started, "$disconnect's start")
	waitClosed(t, obs.closed, "the connection's end")
	select {
	case <-slow.returned:
		t.Fatal("$disconnect ended with the gateway's timeout")
	default:
	}
	if inv := obs.find(local.RouteDisconnect); inv == nil || !errors.Is(inv.Err, context.DeadlineExceeded) {
		t.Errorf("observed %+v, want context.DeadlineExceeded", inv)
	}
	close(slow.release)
	waitClosed(t, slow.returned, "the slow $disconnect's return")
}

// invocationLog is an Observer that keeps the route invocations.
type invocationLog struct {
	mu  sync.Mutex
	all []local.RouteInvocation
	// closed, when set, is sent to as each connection ends.
	closed chan struct{}
}

func (l *invocationLog) ConnectionOpened(local.ConnectionInfo) {}
func (l *invocationLog) ConnectionClosed(local.ConnectionInfo, int, string) {
	if l.closed != nil {
		l.closed <- struct{}{}
	}
}
func (l *invocationLog) ManagementCalled(local.ManagementCall) {}
func (l *invocationLog) RouteInvoked(r local.RouteInvocation) {
	l.mu.Lock()
	l.all = append(l.all, r)
	l.mu.Unlock()
}

// find returns the first invocation of routeKey, nil when there is none.
func (l *invocationLog) find(routeKey string) *local.RouteInvocation {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.all {
		if r.RouteKey == routeKey {
			return &r
		}
	}
	return nil
}
