package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs the demo the way `streamer dev` does: the local gateway in
// front of the awslambda handlers, the router and its processor pool, the
// memory store and the ConnectionManager answering through @connections.
func start(t *testing.T) (wsURL string) {
	t.Helper()
	return startWith(t, demo.AnonymousIdentity)
}

// startWith is start with another identity for the connections, standing
// in for a token verifier.
func startWith(t *testing.T, identity func(streamer.ConnectRequest) streamer.Identity) (wsURL string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/dev"
	st := memory.New()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}
	mgr := connection.NewManager(st, connection.NewAPIGatewayClient(cfg, endpoint), endpoint)
	queue := streamer.NewQueue(0)
	router := streamer.NewRouter(st, mgr, streamer.WithConnectionStore(st), streamer.WithQueue(queue))
	demo.Register(router, st, mgr)
	proc := streamer.NewProcessor(st, mgr, router.Actions(), streamer.WithProcessorConnections(st), streamer.WithProcessorQueue(queue))
	if err := proc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conns := streamer.NewConnectHandler(st, streamer.WithAnonymousIdentity(identity))
	flush := awslambda.WithFlusher(mgr)
	gw, err := local.New(local.Config{Routes: map[string]local.Handler{
		local.RouteConnect:    awslambda.ConnectHandler(conns, flush),
		local.RouteDisconnect: awslambda.DisconnectHandler(conns, flush),
		local.RouteDefault:    awslambda.RouterHandler(router, flush),
	}})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
		if err := proc.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := mgr.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return "ws://" + ln.Addr().String() + "/dev"
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctxT(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.Write(ctxT(t), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// reply is any server message, read generically.
type reply struct {
	Type       protocol.MessageType `json:"type"`
	RequestID  string               `json:"request_id"`
	Data       json.RawMessage      `json:"data"`
	Result     json.RawMessage      `json:"result"`
	Percentage float64              `json:"percentage"`
	Code       protocol.ErrorCode   `json:"code"`
}

func readRaw(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	_, b, err := c.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func read(t *testing.T, c *websocket.Conn) reply {
	t.Helper()
	b := readRaw(t, c)
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return r
}

func whoami(t *testing.T, c *websocket.Conn) demo.Identity {
	t.Helper()
	send(t, c, `{"type":"request","id":"w","action":"whoami","payload":{"userId":"evil","tenantId":"other","permissions":["admin"]}}`)
	r := read(t, c)
	if r.Type != protocol.TypeResponse || r.RequestID != "w" {
		t.Fatalf("whoami reply %+v", r)
	}
	var id demo.Identity
	if err := json.Unmarshal(r.Data, &id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEcho(t *testing.T) {
	c := dial(t, start(t))
	send(t, c, `{"type":"request","id":"r1","action":"echo","payload":{"n":1,"s":"x"}}`)
	if r := read(t, c); r.Type != protocol.TypeResponse || r.RequestID != "r1" || string(r.Data) != `{"n":1,"s":"x"}` {
		t.Errorf("reply %+v data %s", r, r.Data)
	}
	send(t, c, `{"type":"request","id":"r2","action":"echo"}`)
	if r := read(t, c); r.Type != protocol.TypeResponse || string(r.Data) != `null` {
		t.Errorf("echo without payload: %+v data %s", r, r.Data)
	}
}

func TestWhoamiIdentityComesFromConnectNotFromTheClient(t *testing.T) {
	c := dial(t, start(t)+"?userId=evil&tenantId=other")
	id := whoami(t, c)
	if id.UserID != demo.AnonymousUser || id.TenantID != demo.DefaultTenant || id.ConnectionID == "" ||
		id.Permissions == nil || len(id.Permissions) != 0 {
		t.Errorf("identity %+v", id)
	}
}

func TestBroadcastReachesTheTenant(t *testing.T) {
	url := start(t)
	a, b, c := dial(t, url), dial(t, url), dial(t, url)
	send(t, a, `{"type":"request","id":"b1","action":"broadcast","payload":{"text":"hi all"}}`)
	for i, conn := range []*websocket.Conn{a, b, c} {
		if got := string(readRaw(t, conn)); got != `{"v":1,"type":"relay","data":{"text":"hi all"},"info":{"user_id":"anonymous"}}` {
			t.Errorf("connection %d got %s", i, got)
		}
	}
	r := read(t, a)
	var res demo.BroadcastResult
	if err := json.Unmarshal(r.Data, &res); err != nil || r.Type != protocol.TypeResponse || r.RequestID != "b1" ||
		res != (demo.BroadcastResult{Recipients: 3, Delivered: 3}) {
		t.Errorf("broadcast answer %+v data %s (%v)", r, r.Data, err)
	}
	send(t, a, `{"type":"request","id":"b2","action":"broadcast"}`)
	if r := read(t, a); r.Type != protocol.TypeError || r.Code != protocol.CodeInvalidMessage {
		t.Errorf("broadcast without payload: %+v", r)
	}
}

// TestBroadcastStaysInTheTenant: a broadcast reaches the caller's tenant
// only. The other tenant's client then asks whoami, and its first message
// is the answer: the broadcast, which had finished, never reached it.
func TestBroadcastStaysInTheTenant(t *testing.T) {
	url := startWith(t, func(r streamer.ConnectRequest) streamer.Identity {
		tenant := ""
		for k, v := range r.Headers {
			if strings.EqualFold(k, "X-Test-Tenant") {
				tenant = v
			}
		}
		return streamer.Identity{UserID: "user-" + tenant, TenantID: tenant}
	})
	dialTenant := func(tenant string) *websocket.Conn {
		c, _, err := websocket.Dial(ctxT(t), url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Test-Tenant": {tenant}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	a1, a2, b1 := dialTenant("a"), dialTenant("a"), dialTenant("b")
	send(t, a1, `{"type":"request","id":"b1","action":"broadcast","payload":{"text":"tenant a only"}}`)
	for i, conn := range []*websocket.Conn{a1, a2} {
		if got := string(readRaw(t, conn)); got != `{"v":1,"type":"relay","data":{"text":"tenant a only"},"info":{"user_id":"user-a"}}` {
			t.Errorf("tenant a connection %d got %s", i, got)
		}
	}
	r := read(t, a1)
	var res demo.BroadcastResult
	if err := json.Unmarshal(r.Data, &res); err != nil || r.RequestID != "b1" || res != (demo.BroadcastResult{Recipients: 2, Delivered: 2}) {
		t.Errorf("broadcast answer %+v data %s (%v)", r, r.Data, err)
	}
	if id := whoami(t, b1); id.TenantID != "b" {
		t.Errorf("tenant b's client: whoami %+v", id)
	}
}

func TestReportStreamsOrderedProgressThenCompletes(t *testing.T) {
	c := dial(t, start(t))
	send(t, c, `{"type":"request","id":"r","action":"report","payload":{"seconds":0.5}}`)
	ack := read(t, c)
	if ack.Type != protocol.TypeAck || ack.RequestID == "" {
		t.Fatalf("ack %+v", ack)
	}
	last := -1.0
	for {
		r := read(t, c)
		if r.RequestID != ack.RequestID {
			t.Fatalf("message for another request: %+v", r)
		}
		if r.Type == protocol.TypeComplete {
			var res demo.ReportResult
			if err := json.Unmarshal(r.Result, &res); err != nil || res.Steps != 5 || res.Seconds != 0.5 {
				t.Errorf("result %s (%v)", r.Result, err)
			}
			break
		}
		if r.Type != protocol.TypeProgress || r.Percentage <= last {
			t.Fatalf("after %v%%: %+v", last, r)
		}
		last = r.Percentage
	}
	if last != 100 {
		t.Errorf("last progress %v, want 100 before complete", last)
	}
}

func TestReportRefusesOutOfRangeSeconds(t *testing.T) {
	c := dial(t, start(t))
	for id, p := range map[string]string{"neg": `{"seconds":-1}`, "long": `{"seconds":61}`} {
		send(t, c, `{"type":"request","id":"`+id+`","action":"report","payload":`+p+`}`)
		ack := read(t, c)
		if ack.Type != protocol.TypeAck {
			t.Fatalf("%s: %+v", p, ack)
		}
		if r := read(t, c); r.Type != protocol.TypeError || r.Code != protocol.CodeInvalidMessage || r.RequestID != ack.RequestID {
			t.Errorf("%s: %+v, want INVALID_MESSAGE", p, r)
		}
	}
	send(t, c, `{"type":"request","id":"bad","action":"report","payload":{"seconds":"ten"}}`)
	if r := read(t, c); r.Type != protocol.TypeError || r.Code != protocol.CodeInvalidMessage || r.RequestID != "bad" {
		t.Errorf("seconds as a string: %+v", r)
	}
}

func TestReportStopsWhenCancelled(t *testing.T) {
	c := dial(t, start(t))
	send(t, c, `{"type":"request","id":"long","action":"report","payload":{"seconds":60}}`)
	ack := read(t, c)
	if ack.Type != protocol.TypeAck {
		t.Fatalf("ack %+v", ack)
	}
	// Once it is running, cancel it.
	if r := read(t, c); r.Type != protocol.TypeProgress {
		t.Fatalf("first message %+v", r)
	}
	send(t, c, `{"type":"cancel","request_id":"`+ack.RequestID+`"}`)
	for {
		r := read(t, c)
		if r.Type == protocol.TypeError {
			if r.Code != protocol.CodeCancelled || r.RequestID != ack.RequestID {
				t.Fatalf("cancel answer %+v", r)
			}
			break
		}
		if r.Type != protocol.TypeProgress {
			t.Fatalf("before the cancel answer: %+v", r)
		}
	}
	// The handler stopped: a resume reports it cancelled, and the socket
	// carries no complete (a ping's pong is the next message).
	send(t, c, `{"type":"resume","request_id":"`+ack.RequestID+`"}`)
	send(t, c, `{"type":"ping"}`)
	for {
		r := read(t, c)
		if r.Type == protocol.TypePong {
			break
		}
		if r.Type == protocol.TypeComplete {
			t.Fatalf("complete after cancel: %+v", r)
		}
		if r.Type == protocol.TypeError && r.Code != protocol.CodeCancelled {
			t.Fatalf("resume after cancel: %+v", r)
		}
	}
}

func TestUnknownActionAndBadJSON(t *testing.T) {
	c := dial(t, start(t))
	for msg, want := range map[string]protocol.ErrorCode{
		`not json`: protocol.CodeInvalidMessage,
		`{"type":"request","id":"x","action":"nope"}`: protocol.CodeUnknownAction,
	} {
		send(t, c, msg)
		if r := read(t, c); r.Type != protocol.TypeError || r.Code != want {
			t.Errorf("%s → %+v, want error %s", msg, r, want)
		}
	}
}
