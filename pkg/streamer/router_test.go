package streamer_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type echoIn struct {
	Text   string `json:"text"`
	UserID string `json:"user_id"`
}

type echoOut struct {
	Text   string `json:"text"`
	UserID string `json:"user_id"`
	Tenant string `json:"tenant"`
}

func echoHandler() streamer.Handler {
	return streamer.HandlerOf(func(ctx context.Context, req *streamer.Request, in echoIn) (any, error) {
		return echoOut{Text: in.Text, UserID: req.Identity.UserID, Tenant: req.Identity.TenantID}, nil
	})
}

func TestSyncEchoRepliesThroughSender(t *testing.T) {
	e := newEnv(t)
	e.router.Handle("echo", echoHandler())
	e.connect(t, "c1", "alice", "t1")

	w := e.reply(t, "c1", `{"v":1,"type":"request","id":"42","action":"echo","payload":{"text":"hi"}}`)
	if w.Type != "response" || w.RequestID != "42" || w.V != protocol.Version {
		t.Fatalf("reply = %+v, want response to 42 with version", w)
	}
	var out echoOut
	if err := json.Unmarshal(w.Data, &out); err != nil {
		t.Fatal(err)
	}
	if out != (echoOut{Text: "hi", UserID: "alice", Tenant: "t1"}) {
		t.Fatalf("data = %+v", out)
	}
}

func TestSpoofedIdentityInPayloadIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.router.Handle("echo", echoHandler())
	e.connect(t, "c1", "alice", "t1")
	w := e.reply(t, "c1", `{"type":"request","id":"1","action":"echo","payload":{"text":"x","user_id":"mallory","tenant_id":"t2"},"user_id":"mallory"}`)
	var out echoOut
	if err := json.Unmarshal(w.Data, &out); err != nil {
		t.Fatal(err)
	}
	if out.UserID != "alice" || out.Tenant != "t1" {
		t.Fatalf("identity came from the message: %+v", out)
	}
}

func TestInvalidMessagesGetTypedErrors(t *testing.T) {
	e := newEnv(t, streamer.WithMaxPayload(256))
	e.router.Handle("echo", echoHandler())
	e.connect(t, "c1", "alice", "")
	cases := []struct {
		name, body, code, id string
	}{
		{"not json", `{"type":`, "INVALID_MESSAGE", ""},
		{"array", `[1,2]`, "INVALID_MESSAGE", ""},
		{"empty", `   `, "INVALID_MESSAGE", ""},
		{"no type", `{"id":"1","action":"echo"}`, "INVALID_MESSAGE", "1"},
		{"unknown type", `{"type":"subscribe","id":"1"}`, "INVALID_MESSAGE", "1"},
		{"missing id", `{"type":"request","action":"echo"}`, "INVALID_MESSAGE", ""},
		{"missing action", `{"type":"request","id":"7"}`, "INVALID_MESSAGE", "7"},
		{"future version", `{"v":99,"type":"request","id":"7","action":"echo"}`, "INVALID_MESSAGE", "7"},
		{"wrong field type", `{"type":"request","id":7,"action":"echo"}`, "INVALID_MESSAGE", ""},
		{"cancel without id", `{"type":"cancel"}`, "INVALID_MESSAGE", ""},
		{"oversize", `{"type":"request","id":"1","action":"echo","payload":"` + strings.Repeat("a", 300) + `"}`, "INVALID_MESSAGE", ""},
		{"unknown action", `{"type":"request","id":"8","action":"nope"}`, "UNKNOWN_ACTION", "8"},
		{"payload of wrong shape", `{"type":"request","id":"9","action":"echo","payload":{"text":5}}`, "INVALID_MESSAGE", "9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.reply(t, "c1", c.body)
			if w.Type != "error" || w.Code != c.code || w.RequestID != c.id {
				t.Fatalf("reply = %+v, want error %s for %q", w, c.code, c.id)
			}
			if strings.Contains(w.Message, "Go struct") || strings.Contains(w.Message, "json:") {
				t.Fatalf("message leaks decoder internals: %q", w.Message)
			}
		})
	}
	// The connection keeps working after every refusal.
	if w := e.reply(t, "c1", `{"type":"request","id":"ok","action":"echo","payload":{"text":"still here"}}`); w.Type != "response" {
		t.Fatalf("after errors: %+v", w)
	}
}

func TestPingPongNeedsNoIdentity(t *testing.T) {
	e := newEnv(t)
	if w := e.reply(t, "unknown", `{"type":"ping"}`); w.Type != "pong" || w.V != 1 {
		t.Fatalf("reply = %+v", w)
	}
}

func TestUnknownConnectionIsUnauthorized(t *testing.T) {
	e := newEnv(t)
	e.router.Handle("echo", echoHandler())
	w := e.reply(t, "ghost", `{"type":"request","id":"1","action":"echo"}`)
	if w.Code != "UNAUTHORIZED" || w.RequestID != "1" {
		t.Fatalf("reply = %+v", w)
	}
}

func TestPermissionsAreEnforced(t *testing.T) {
	e := newEnv(t)
	e.router.Handle("admin", streamer.HandlerFunc(func(context.Context, *streamer.Request) (any, error) { return "ok", nil }),
		streamer.RequirePermissions("admin"))
	e.connect(t, "weak", "bob", "")
	e.connect(t, "strong", "carol", "", "read", "admin")
	if w := e.reply(t, "weak", `{"type":"request","id":"1","action":"admin"}`); w.Code != "FORBIDDEN" {
		t.Fatalf("without permission: %+v", w)
	}
	if w := e.reply(t, "strong", `{"type":"request","id":"1","action":"admin"}`); w.Type != "response" {
		t.Fatalf("with permission: %+v", w)
	}
}

func TestHandlerErrorsNeverLeakInternals(t *testing.T) {
	e := newEnv(t)
	e.router.HandleFunc("boom", func(context.Context, *streamer.Request) (any, error) {
		return nil, errors.New("db password is hunter2")
	})
	e.router.HandleFunc("panic", func(context.Context, *streamer.Request) (any, error) {
		panic("secret panic detail")
	})
	e.router.HandleFunc("client", func(context.Context, *streamer.Request) (any, error) {
		return nil, streamer.NewClientError(protocol.CodeNotFound, "no such widget")
	})
	e.router.HandleFunc("unmarshalable", func(context.Context, *streamer.Request) (any, error) {
		return func() {}, nil
	})
	e.connect(t, "c1", "alice", "")
	for action, want := range map[string]string{"boom": "INTERNAL", "panic": "INTERNAL", "client": "NOT_FOUND", "unmarshalable": "INTERNAL"} {
		w := e.reply(t, "c1", `{"type":"request","id":"x","action":"`+action+`"}`)
		if w.Code != want {
			t.Errorf("%s: code %s, want %s", action, w.Code, want)
		}
		if strings.Contains(w.Message, "hunter2") || strings.Contains(w.Message, "secret") {
			t.Errorf("%s: leaked %q", action, w.Message)
		}
	}
}

func TestSyncTimeout(t *testing.T) {
	e := newEnv(t, streamer.WithSyncTimeout(time.Hour))
	e.router.HandleFunc("slow", func(ctx context.Context, _ *streamer.Request) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, streamer.Timeout(20*time.Millisecond))
	e.connect(t, "c1", "alice", "")
	if w := e.reply(t, "c1", `{"type":"request","id":"s","action":"slow"}`); w.Code != "TIMEOUT" || w.RequestID != "s" {
		t.Fatalf("reply = %+v", w)
	}
}

func TestMiddlewareWrapsSyncAndAsyncAlike(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var seen []string
	e.router.Use(func(next streamer.Handler) streamer.Handler {
		return streamer.HandlerFunc(func(ctx context.Context, req *streamer.Request) (any, error) {
			mu.Lock()
			seen = append(seen, req.Action+"/"+map[bool]string{true: "async", false: "sync"}[req.Async]+"/"+req.Identity.UserID)
			mu.Unlock()
			return next.ServeRequest(ctx, req)
		})
	})
	e.router.Handle("echo", echoHandler())
	e.router.HandleAsync("work", streamer.AsyncHandlerFunc(func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return "done", nil
	}))
	p := e.processor()
	e.connect(t, "c1", "alice", "")
	e.reply(t, "c1", `{"type":"request","id":"1","action":"echo"}`)
	ack := e.reply(t, "c1", `{"type":"request","id":"2","action":"work"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "echo/sync/alice,work/async/alice" {
		t.Fatalf("middleware saw %v", seen)
	}
}

func TestRegistrationMistakesPanic(t *testing.T) {
	e := newEnv(t)
	e.router.Handle("echo", echoHandler())
	for name, fn := range map[string]func(){
		"duplicate": func() { e.router.Handle("echo", echoHandler()) },
		"nil":       func() { e.router.Handle("x", nil) },
		"empty":     func() { e.router.Handle("", echoHandler()) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}
