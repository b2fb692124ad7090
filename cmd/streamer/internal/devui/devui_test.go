package devui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/cmd/streamer/internal/devui"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/runtime/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stack is a real gateway behind the UI on one loopback listener, as
// `streamer dev` runs them; $connect stores each connection as user u1 in
// tenant t1, and $default answers "pong" through nothing (one-way).
type stack struct {
	base  string
	ui    *devui.UI
	gw    *local.Gateway
	conns *countingStore
}

// countingStore counts Get, to show the console reads each connection's
// identity once rather than on every poll.
type countingStore struct {
	*memory.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, id string) (*store.Connection, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, id)
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := &countingStore{Store: memory.New()}
	base := "http://" + ln.Addr().String()
	ui, err := devui.New(devui.Config{ManagementEndpoint: base + "/dev", Connections: conns, History: 5})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := local.New(local.Config{
		Observer: ui,
		Routes: map[string]local.Handler{
			local.RouteConnect: func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				err := conns.Save(ctx, &store.Connection{ConnectionID: req.RequestContext.ConnectionID, UserID: "u1", TenantID: "t1", ConnectedAt: time.Now()})
				return events.APIGatewayProxyResponse{StatusCode: 200}, err
			},
			local.RouteDefault: func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				if req.Body == "fail" {
					return events.APIGatewayProxyResponse{}, errors.New("handler failed")
				}
				return events.APIGatewayProxyResponse{StatusCode: 200}, nil
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ui.Attach(gw)
	srv := &http.Server{Handler: ui.Handler(gw)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		gw.Shutdown(ctx)
		<-done
	})
	return &stack{base: base, ui: ui, gw: gw, conns: conns}
}

func (s *stack) dial(t *testing.T) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.base, "http")+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func (s *stack) state(t *testing.T) devui.State {
	t.Helper()
	resp, err := http.Get(s.base + "/_console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st devui.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (s *stack) waitState(t *testing.T, what string, ok func(devui.State) bool) devui.State {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.state(t)
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never showed %s: %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestRoutes: the page, its assets and the console are served from the
// embedded files; other paths are the gateway's (403 like API Gateway).
func TestRoutes(t *testing.T) {
	s := newStack(t)
	code, h, body := get(t, s.base+"/")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, `<meta name="streamer-stage" content="dev">`) || !strings.Contains(body, `content="off"`) {
		t.Fatalf("page: %d %v\n%s", code, h, body)
	}
	for _, p := range []string{"/_ui/app.js", "/_ui/console.js", "/_ui/style.css", "/_ui/client/index.js", "/_ui/client/client.js"} {
		code, h, body := get(t, s.base+p)
		if code != 200 || body == "" {
			t.Errorf("%s: %d %q", p, code, h.Get("Content-Type"))
		}
		if strings.HasSuffix(p, ".js") && !strings.Contains(h.Get("Content-Type"), "javascript") {
			t.Errorf("%s served as %q; browsers refuse modules that are not JavaScript", p, h.Get("Content-Type"))
		}
	}
	if code, _, body := get(t, s.base+"/_console"); code != 200 || !strings.Contains(body, "Streamer dev console") {
		t.Errorf("console: %d", code)
	}
	if code, _, _ := get(t, s.base+"/_ui/missing.js"); code != 404 {
		t.Errorf("missing asset: %d, want 404", code)
	}
	code, h, _ = get(t, s.base+"/elsewhere")
	if code != 403 || h.Get("X-Amzn-Errortype") != "ForbiddenException" {
		t.Errorf("unknown path: %d %q, want the gateway's 403", code, h.Get("X-Amzn-Errortype"))
	}
	// The management API is still the gateway's.
	code, h, _ = get(t, s.base+"/dev/@connections/nobody")
	if code != 410 || h.Get("X-Amzn-Errortype") != "GoneException" {
		t.Errorf("GET @connections of a stranger: %d %q, want 410 GoneException", code, h.Get("X-Amzn-Errortype"))
	}
	resp, err := http.Post(s.base+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", resp.StatusCode)
	}
}

// TestConsoleState: connections (with the stored identity), route
// invocations (with the handler's status and error) and @connections calls
// appear in the state, newest first, and the history is bounded.
func TestConsoleState(t *testing.T) {
	s := newStack(t)
	if st := s.state(t); len(st.Connections) != 0 || st.Open != 0 || st.Stage != "dev" {
		t.Fatalf("fresh state: %+v", st)
	}
	c := s.dial(t)
	st := s.waitState(t, "one connection", func(st devui.State) bool { return len(st.Connections) == 1 && st.Open == 1 })
	conn := st.Connections[0]
	if conn.UserID != "u1" || conn.TenantID != "t1" || conn.SourceIP != "127.0.0.1" || conn.ConnectedAt.IsZero() || conn.LastActiveAt.IsZero() {
		t.Fatalf("connection: %+v", conn)
	}
	gets := s.conns.gets.Load()
	for range 3 {
		if st := s.state(t); st.Connections[0].UserID != "u1" {
			t.Fatalf("identity lost: %+v", st.Connections[0])
		}
	}
	if n := s.conns.gets.Load() - gets; n != 0 {
		t.Errorf("3 more polls read the store %d times; the identity is cached", n)
	}
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, []byte("fail")); err != nil {
		t.Fatal(err)
	}
	st = s.waitState(t, "the failed route", func(st devui.State) bool { return len(st.Routes) == 2 })
	if r := st.Routes[0]; r.RouteKey != "$default" || r.Status != 500 || r.Error != "handler failed" || r.Bytes != 4 || r.ConnectionID != conn.ConnectionID {
		t.Errorf("newest route: %+v", r)
	}
	if r := st.Routes[1]; r.RouteKey != "$connect" || r.Status != 200 {
		t.Errorf("oldest route: %+v", r)
	}
	for range 6 {
		if err := c.Write(ctx, websocket.MessageText, []byte("ok")); err != nil {
			t.Fatal(err)
		}
	}
	st = s.waitState(t, "eight routes in all", func(st devui.State) bool { return st.Totals.Routes == 8 })
	if len(st.Routes) != 5 {
		t.Errorf("history keeps %d routes, want 5 (Config.History)", len(st.Routes))
	}
	if st.Totals.Opened != 1 {
		t.Errorf("totals: %+v", st.Totals)
	}
}

func manage(t *testing.T, s *stack, method, id, body string, header map[string]string) (int, devui.ManageResult) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+"/_console/api/connections/"+url.PathEscape(id), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res devui.ManageResult
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, res
}

// TestConsolePostAndDisconnect: the console's buttons are real
// @connections calls: the client receives the post, DELETE closes it with
// 1000, both show as management calls, and a gone connection answers 410.
func TestConsolePostAndDisconnect(t *testing.T) {
	s := newStack(t)
	c := s.dial(t)
	st := s.waitState(t, "one connection", func(st devui.State) bool { return len(st.Connections) == 1 })
	id := st.Connections[0].ConnectionID
	hdr := map[string]string{"X-Streamer-Console": "1"}

	code, res := manage(t, s, "POST", id, `{"hello":"console"}`, hdr)
	if code != 200 || res.Status != 200 {
		t.Fatalf("post: %d %+v", code, res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != `{"hello":"console"}` {
		t.Fatalf("client read %q, %v", msg, err)
	}

	code, res = manage(t, s, "DELETE", id, "", hdr)
	if code != 200 || res.Status != 204 {
		t.Fatalf("delete: %d %+v", code, res)
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("client read after DELETE: %v, want close 1000", err)
	}
	st = s.waitState(t, "the closed connection", func(st devui.State) bool { return len(st.Connections) == 0 && len(st.Closed) == 1 })
	if cl := st.Closed[0]; cl.ConnectionID != id || cl.Code != 1000 {
		t.Errorf("closed: %+v", cl)
	}
	code, res = manage(t, s, "POST", id, "late", hdr)
	if code != 200 || res.Status != 410 || res.ErrorType != "GoneException" {
		t.Errorf("post to a gone connection: %d %+v, want 410 GoneException", code, res)
	}
	// A call is recorded once answered, which can be just after our
	// proxy read the answer.
	st = s.waitState(t, "three management calls", func(st devui.State) bool { return len(st.Management) == 3 })
	var methods []string
	for _, m := range st.Management {
		methods = append(methods, m.Method+" "+http.StatusText(m.Status))
	}
	if got := strings.Join(methods, ", "); got != "POST Gone, DELETE No Content, POST OK" {
		t.Errorf("management calls, newest first: %s", got)
	}
	if st.Management[2].Bytes != len(`{"hello":"console"}`) {
		t.Errorf("post bytes: %+v", st.Management[2])
	}
}

// TestConsoleRefusesForeignCalls: another site's page cannot drive the
// management API through the console: the console header is required (a
// cross-origin page cannot add it without a preflight this server never
// grants), and a foreign Origin is refused.
func TestConsoleRefusesForeignCalls(t *testing.T) {
	s := newStack(t)
	c := s.dial(t)
	st := s.waitState(t, "one connection", func(st devui.State) bool { return len(st.Connections) == 1 })
	id := st.Connections[0].ConnectionID
	if code, _ := manage(t, s, "DELETE", id, "", nil); code != 403 {
		t.Errorf("without the console header: %d, want 403", code)
	}
	if code, _ := manage(t, s, "DELETE", id, "", map[string]string{"X-Streamer-Console": "1", "Origin": "https://evil.example"}); code != 403 {
		t.Errorf("foreign origin: %d, want 403", code)
	}
	if code, _ := manage(t, s, "GET", id, "", map[string]string{"X-Streamer-Console": "1"}); code != 405 {
		t.Errorf("GET: %d, want 405", code)
	}
	if n := s.gw.ActiveConnections(); n != 1 {
		t.Fatalf("connections after refused calls: %d", n)
	}
	if code, res := manage(t, s, "DELETE", id, "", map[string]string{"X-Streamer-Console": "1", "Origin": s.base}); code != 200 || res.Status != 204 {
		t.Errorf("same origin: %d %+v", code, res)
	}
	c.CloseNow()
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []devui.Config{
		{},
		{ManagementEndpoint: "ftp://x/dev"},
		{ManagementEndpoint: "http:///dev"},
		{ManagementEndpoint: "http://127.0.0.1:1/dev", History: -1},
	} {
		if _, err := devui.New(cfg); !errors.Is(err, devui.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

type listerOf []local.ConnectionInfo

func (l listerOf) Connections() []local.ConnectionInfo { return l }

// TestStateListsAtMostMaxListed: with more connections open than the
// console lists (a benchmark's 10,000), State counts them all and lists the
// oldest MaxListedConnections.
func TestStateListsAtMostMaxListed(t *testing.T) {
	ui, err := devui.New(devui.Config{ManagementEndpoint: "http://127.0.0.1:1/dev"})
	if err != nil {
		t.Fatal(err)
	}
	open := make(listerOf, devui.MaxListedConnections+100)
	for i := range open {
		open[i] = local.ConnectionInfo{ConnectionID: fmt.Sprintf("c%04d", i)}
	}
	ui.Attach(open)
	st := ui.State(context.Background())
	if st.Open != len(open) || len(st.Connections) != devui.MaxListedConnections || st.Connections[0].ConnectionID != "c0000" {
		t.Fatalf("open %d, listed %d, first %+v", st.Open, len(st.Connections), st.Connections[0])
	}
}
