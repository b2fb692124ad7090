package streamer_test

import (
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// FuzzParseInbound checks that parsing never panics, that every refusal is
// a typed ValidationError whose text is valid UTF-8 and bounded, and that
// every accepted message has what its type requires.
func FuzzParseInbound(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"request","id":"1","action":"echo","payload":{"text":"hi"}}`,
		`{"type":"cancel","request_id":"r-1"}`,
		`{"type":"resume","request_id":"r-1"}`,
		`{"type":"ping"}`,
		`{"type":"request","id":"1","action":"echo","payload":null}`,
		`{"v":2,"type":"ping"}`,
		`{"type":"subscribe","id":"s","channel":"chat:a","since":{"offset":3,"epoch":"e"}}`,
		`{"type":"publish","id":"p","channel":"news","data":{"x":1}}`,
		`{"type":"presence","id":"q","channel":"a#b"}`,
		`{"type":"request"`,
		`[]`,
		`"\u0000"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := streamer.ParseInbound(body, 4096)
		if err != nil {
			var ve *streamer.ValidationError
			if !asValidation(err, &ve) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if !utf8.ValidString(ve.Reason) || len(ve.Reason) > 200 || len(ve.RequestID) > streamer.MaxIDLength {
				t.Fatalf("bad refusal %+v", ve)
			}
			if ve.Code != streamer.CodeInvalidMessage {
				t.Fatalf("code %s", ve.Code)
			}
			return
		}
		if in.Version != streamer.ProtocolVersion {
			t.Fatalf("accepted version %d", in.Version)
		}
		switch in.Type {
		case streamer.TypeRequest:
			if in.ID == "" || in.Action == "" || len(in.ID) > streamer.MaxIDLength || len(in.Action) > streamer.MaxIDLength {
				t.Fatalf("accepted request without id/action: %+v", in)
			}
			if in.Payload != nil && !json.Valid(in.Payload) {
				t.Fatalf("accepted invalid payload %q", in.Payload)
			}
		case streamer.TypeCancel, streamer.TypeResume:
			if in.RequestID == "" || len(in.RequestID) > streamer.MaxIDLength {
				t.Fatalf("accepted %s without request_id", in.Type)
			}
		case streamer.TypePing:
		case streamer.TypeSubscribe, streamer.TypeUnsubscribe, streamer.TypePublish, streamer.TypePresence:
			if in.ID == "" || len(in.ID) > streamer.MaxIDLength || streamer.CheckChannelName(in.Channel) != nil {
				t.Fatalf("accepted %s without id or with a bad channel: %+v", in.Type, in)
			}
			if in.Since != nil && (in.Type != streamer.TypeSubscribe || in.Since.Offset < 0 || in.Since.Epoch == "") {
				t.Fatalf("accepted since %+v on %s", in.Since, in.Type)
			}
			if in.Type == streamer.TypePublish && (in.Data == nil || !json.Valid(in.Data)) {
				t.Fatalf("accepted publish with data %q", in.Data)
			}
		default:
			t.Fatalf("accepted type %q", in.Type)
		}
	})
}

func asValidation(err error, target **streamer.ValidationError) bool {
	ve, ok := err.(*streamer.ValidationError)
	if ok {
		*target = ve
	}
	return ok
}

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
