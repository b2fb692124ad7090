package connection_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/streamer-go/streamer/pkg/connection"
)

func TestSendEmptyMessage(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	for _, msg := range []any{[]byte(nil), "", json.RawMessage(nil)} {
		if err := f.m.Send(context.Background(), "c1", msg); err != nil {
			t.Errorf("Send(%#v): %v", msg, err)
		}
	}
	if got := f.srv.Received("c1"); len(got) != 3 || len(got[0]) != 0 {
		t.Errorf("received %q", got)
	}
}

// FuzzEncode checks that any payload is either put on the wire unchanged
// or refused with a typed error, never mangled and never a panic.
func FuzzEncode(f *testing.F) {
	f.Add([]byte(`{"a":1}`), true)
	f.Add([]byte{0xff, 0x00}, false)
	// (Oversize payloads are covered by TestSendSizeLimitsAndInvalidMessages;
	// a 128 KiB seed would make the fuzzer crawl while minimising it.)
	f.Fuzz(func(t *testing.T, data []byte, asString bool) {
		var msg any = data
		if asString {
			msg = string(data)
		}
		got, err := connection.Encode(msg)
		if len(data) > connection.MaxMessageBytes {
			if !errors.Is(err, connection.ErrMessageTooLarge) {
				t.Fatalf("oversize: err = %v", err)
			}
			return
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Encode changed the payload: %q, %v", got, err)
		}
		// Anything else is JSON: a struct holding the text encodes, or
		// fails with ErrInvalidMessage, never both or neither.
		out, err := connection.Encode(struct{ S string }{string(data)})
		switch {
		case err != nil && !errors.Is(err, connection.ErrInvalidMessage) && !errors.Is(err, connection.ErrMessageTooLarge):
			t.Fatalf("untyped error %v", err)
		case err == nil && !json.Valid(out):
			t.Fatalf("invalid JSON %q", out)
		case err == nil && utf8.Valid(data):
			var back struct{ S string }
			if json.Unmarshal(out, &back) != nil || back.S != string(data) {
				t.Fatalf("round trip lost %q", data)
			}
		}
	})
}
