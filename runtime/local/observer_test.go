package local_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// watcher is an Observer that keeps everything it is told.
type watcher struct {
	mu      sync.Mutex
	opened  []local.ConnectionInfo
	closed  []closedConn
	routes  []local.RouteInvocation
	calls   []local.ManagementCall
	changed chan struct{}
}

type closedConn struct {
	info   local.ConnectionInfo
	code   int
	reason string
}

func newWatcher() *watcher { return &watcher{changed: make(chan struct{}, 1000)} }

func (w *watcher) note(f func()) {
	w.mu.Lock()
	f()
	w.mu.Unlock()
	w.changed <- struct{}{}
}

func (w *watcher) ConnectionOpened(c local.ConnectionInfo) {
	w.note(func() { w.opened = append(w.opened, c) })
}

func (w *watcher) ConnectionClosed(c local.ConnectionInfo, code int, reason string) {
	w.note(func() { w.closed = append(w.closed, closedConn{c, code, reason}) })
}

func (w *watcher) RouteInvoked(r local.RouteInvocation) {
	w.note(func() { w.routes = append(w.routes, r) })
}

func (w *watcher) ManagementCalled(m local.ManagementCall) {
	m.Body = slices.Clone(m.Body) // valid during the call only
	w.note(func() { w.calls = append(w.calls, m) })
}

// await waits until cond holds over the watcher's state.
func (w *watcher) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("observer never saw %s", what)
		}
	}
}

func TestObserverSeesConnectionsRoutesAndManagementCalls(t *testing.T) {
	rec := newRecorder()
	w := newWatcher()
	failing := errors.New("boom")
	routes := rec.routes()
	routes["fail"] = func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{}, failing
	}
	gw := start(t, local.Config{Routes: routes, Observer: w})
	ctx := ctxT(t)

	c := dial(t, gw, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": []string{"observer-test"}}})
	id := next(t, rec.connects).RequestContext.ConnectionID
	w.await(t, "the connection open", func() bool { return len(w.opened) == 1 })

	conns := gw.Connections()
	if len(conns) != 1 || conns[0].ConnectionID != id || conns[0].UserAgent != "observer-test" || conns[0].ConnectedAt.IsZero() {
		t.Fatalf("Connections() = %+v, want the one connection %s", conns, id)
	}
	if w.opened[0].ConnectionID != id {
		t.Fatalf("opened %+v, want %s", w.opened[0], id)
	}

	msg := `{"action":"hello","n":1}`
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	next(t, rec.messages)
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"fail"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil { // API Gateway's "Internal server error"
		t.Fatal(err)
	}

	api := sdk(t, gw)
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("four")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("Nobody000000000="), Data: []byte("x")})
	if err == nil {
		t.Fatal("POST to an unknown connection succeeded")
	}
	if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	next(t, rec.discs)
	w.await(t, "the connection close", func() bool { return len(w.closed) == 1 })
	w.await(t, "three management calls", func() bool { return len(w.calls) == 3 })
	w.await(t, "four route invocations", func() bool { return len(w.routes) == 4 })

	if cl := w.closed[0]; cl.info.ConnectionID != id || cl.code != int(websocket.StatusNormalClosure) || cl.reason != "Connection deleted" {
		t.Errorf("closed %+v, want %s with 1000 Connection deleted", cl, id)
	}
	if n := len(gw.Connections()); n != 0 {
		t.Errorf("Connections() lists %d after the close, want 0", n)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	want := []struct {
		key    string
		status int
		bytes  int
	}{{"$connect", 200, 0}, {"$default", 200, len(msg)}, {"fail", 500, len(`{"action":"fail"}`)}, {"$disconnect", 200, 0}}
	for i, r := range w.routes {
		if r.RouteKey != want[i].key || r.Status != want[i].status || r.Bytes != want[i].bytes || r.ConnectionID != id || r.RequestID == "" || r.Start.IsZero() {
			t.Errorf("route %d = %+v, want %+v for %s", i, r, want[i], id)
		}
	}
	// The event and the answer, as the handler saw and returned them.
	if ev := w.routes[1].Event; ev.Body != msg || ev.RequestContext.RouteKey != "$default" || ev.RequestContext.ConnectionID != id {
		t.Errorf("$default's Event = %+v, want the message %s on %s", ev, msg, id)
	}
	if ev := w.routes[0].Event; ev.RequestContext.EventType != "CONNECT" || ev.Headers["User-Agent"] != "observer-test" {
		t.Errorf("$connect's Event = %+v, want the CONNECT event with the client's headers", ev)
	}
	if !errors.Is(w.routes[2].Err, failing) {
		t.Errorf("failed route's Err = %v, want the handler's error", w.routes[2].Err)
	}
	wantCalls := []local.ManagementCall{
		{Method: "POST", ConnectionID: id, Status: 200, Bytes: 4, Body: []byte("four")},
		{Method: "POST", ConnectionID: "Nobody000000000=", Status: 410, ErrorType: "GoneException", Bytes: 1, Body: []byte("x")},
		{Method: "DELETE", ConnectionID: id, Status: 204},
	}
	for i, m := range w.calls {
		got := m
		got.Start, got.Duration = time.Time{}, 0
		if !reflect.DeepEqual(got, wantCalls[i]) || m.Start.IsZero() {
			t.Errorf("call %d = %+v, want %+v", i, m, wantCalls[i])
		}
	}
}

func TestObserverSeesRefusedConnectButNoConnection(t *testing.T) {
	w := newWatcher()
	gw := start(t, local.Config{Observer: w, Routes: map[string]local.Handler{
		local.RouteConnect: func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 403}, nil
		},
	}})
	_, resp, err := websocket.Dial(ctxT(t), gw.URL(), nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("dial = %v, %v; want a 403 refusal", resp, err)
	}
	w.await(t, "the $connect invocation", func() bool { return len(w.routes) == 1 })
	w.mu.Lock()
	defer w.mu.Unlock()
	if r := w.routes[0]; r.RouteKey != "$connect" || r.Status != 403 || r.ConnectionID == "" {
		t.Errorf("route = %+v, want $connect answered 403", r)
	}
	if len(w.opened) != 0 || len(w.closed) != 0 {
		t.Errorf("opened %v, closed %v; a refused connection never opens", w.opened, w.closed)
	}
}

func TestJoinObserversTellsEachInOrder(t *testing.T) {
	var order []string
	a, b := &orderObserver{name: "a", order: &order}, &orderObserver{name: "b", order: &order}
	obs := local.JoinObservers(a, nil, local.JoinObservers(b))
	obs.ConnectionOpened(local.ConnectionInfo{})
	obs.RouteInvoked(local.RouteInvocation{})
	obs.ManagementCalled(local.ManagementCall{})
	obs.ConnectionClosed(local.ConnectionInfo{}, 1000, "")
	got := strings.Join(order, " ")
	if want := "a:open b:open a:route b:route a:call b:call a:close b:close"; got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
}

type orderObserver struct {
	name  string
	order *[]string
}

func (o *orderObserver) ConnectionOpened(local.ConnectionInfo) {
	*o.order = append(*o.order, o.name+":open")
}
func (o *orderObserver) ConnectionClosed(local.ConnectionInfo, int, string) {
	*o.order = append(*o.order, o.name+":close")
}
func (o *orderObserver) RouteInvoked(local.RouteInvocation) {
	*o.order = append(*o.order, o.name+":route")
}
func (o *orderObserver) ManagementCalled(local.ManagementCall) {
	*o.order = append(*o.order, o.name+":call")
}
