package streamer_test

import (
	"context"
	"testing"
	"unicode/utf8"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// FuzzHandleMessage drives the whole router with arbitrary bytes: it must
// never panic, and must answer every message with exactly one well-formed
// message of a protocol type (an async request with an ack, nothing else).
func FuzzHandleMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"request","id":"1","action":"echo","payload":{"text":"hi"}}`,
		`{"type":"request","id":"2","action":"work","payload":{"steps":1}}`,
		`{"type":"request","id":"3","action":"work","payload":{"steps":"x"}}`,
		`{"type":"request","id":"4","action":"nope"}`,
		`{"type":"cancel","request_id":"r-1"}`,
		`{"type":"resume","request_id":"r-1"}`,
		`{"type":"ping"}`,
		`{"type":"request","id":"5","action":"echo","payload":{"text":"\ud800"}}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newEnv(t)
		e.router.Handle("echo", echoHandler())
		e.router.HandleAsync("work", streamer.AsyncHandlerOf(func(context.Context, *streamer.Request, countIn, progress.Reporter) (any, error) {
			return nil, nil
		}))
		e.connect(t, "c1", "alice", "")
		if err := e.router.HandleMessage(t.Context(), streamer.Message{ConnectionID: "c1", Body: body}); err != nil {
			t.Fatalf("HandleMessage: %v", err)
		}
		ms := e.sent.messages("c1")
		if len(ms) != 1 {
			t.Fatalf("%d replies to %q", len(ms), body)
		}
		switch w := ms[0]; w.Type {
		case "response", "ack", "pong", "progress", "complete":
		case "error":
			if w.Code == "" || w.Code == "INTERNAL" || !utf8.ValidString(w.Message) {
				t.Fatalf("error reply %+v to %q", w, body)
			}
		default:
			t.Fatalf("reply %+v", w)
		}
	})
}
