package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs the demo the way `streamer dev` does: the local gateway, the
// memory store and the ConnectionManager answering through @connections.
func start(t *testing.T) (wsURL string, st *memory.Store) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/dev"
	st = memory.New()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}
	mgr := connection.NewManager(st, connection.NewAPIGatewayClient(cfg, endpoint), endpoint)
	gw, err := local.New(local.Config{Routes: demo.New(st, mgr, nil).Routes()})
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
		if err := mgr.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
	return "ws://" + ln.Addr().String() + "/dev", st
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

// reply reads one message as a generic envelope.
type reply struct {
	Type      streamer.MessageType `json:"type"`
	RequestID string               `json:"request_id"`
	Data      json.RawMessage      `json:"data"`
	Code      streamer.ErrorCode   `json:"code"`
}

func read(t *testing.T, c *websocket.Conn) reply {
	t.Helper()
	_, b, err := c.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return r
}

func whoami(t *testing.T, c *websocket.Conn) demo.Identity {
	t.Helper()
	send(t, c, `{"type":"request","id":"w","action":"whoami","payload":{"userId":"evil","tenantId":"other"}}`)
	r := read(t, c)
	if r.Type != streamer.TypeResponse || r.RequestID != "w" {
		t.Fatalf("whoami reply %+v", r)
	}
	var id demo.Identity
	if err := json.Unmarshal(r.Data, &id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEcho(t *testing.T) {
	url, _ := start(t)
	c := dial(t, url)
	send(t, c, `{"type":"request","id":"r1","action":"echo","payload":{"n":1,"s":"x"}}`)
	r := read(t, c)
	if r.Type != streamer.TypeResponse || r.RequestID != "r1" || string(r.Data) != `{"n":1,"s":"x"}` {
		t.Errorf("reply %+v data %s", r, r.Data)
	}
}

func TestWhoamiIdentityComesFromConnectNotFromTheClient(t *testing.T) {
	url, st := start(t)
	c := dial(t, url+"?userId=evil&tenantId=other")
	id := whoami(t, c)
	if id.UserID != demo.AnonymousUser || id.TenantID != demo.DefaultTenant || id.ConnectionID == "" {
		t.Errorf("identity %+v", id)
	}
	rec, err := st.Get(ctxT(t), id.ConnectionID)
	if err != nil || rec.UserID != demo.AnonymousUser {
		t.Errorf("stored %+v, %v", rec, err)
	}
}

func TestBroadcastReachesTheTenant(t *testing.T) {
	url, _ := start(t)
	a, b, c := dial(t, url), dial(t, url), dial(t, url)
	for _, conn := range []*websocket.Conn{a, b, c} {
		whoami(t, conn) // each connection is stored before the broadcast
	}
	send(t, a, `{"type":"request","id":"b1","action":"broadcast","payload":{"text":"hi all"}}`)
	for i, conn := range []*websocket.Conn{a, b, c} {
		r := read(t, conn)
		if r.Type != streamer.TypeResponse || r.RequestID != "b1" || string(r.Data) != `{"text":"hi all"}` {
			t.Errorf("connection %d got %+v", i, r)
		}
	}
}

func TestBadRequests(t *testing.T) {
	url, _ := start(t)
	c := dial(t, url)
	for msg, want := range map[string]streamer.ErrorCode{
		`not json`:                                    streamer.CodeInvalidMessage,
		`{"type":"request","action":"echo"}`:          streamer.CodeInvalidMessage,
		`{"type":"request","id":"x","action":"nope"}`: streamer.CodeUnknownAction,
		`{"type":"bogus","id":"x"}`:                   streamer.CodeInvalidMessage,
	} {
		send(t, c, msg)
		if r := read(t, c); r.Type != streamer.TypeError || r.Code != want {
			t.Errorf("%s → %+v, want error %s", msg, r, want)
		}
	}
	send(t, c, `{"type":"ping"}`)
	if r := read(t, c); r.Type != streamer.TypePong {
		t.Errorf("ping → %+v", r)
	}
}

func TestDisconnectRemovesTheConnection(t *testing.T) {
	url, st := start(t)
	c := dial(t, url)
	id := whoami(t, c).ConnectionID
	c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.Get(ctxT(t), id)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection still stored after close: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
