package protocol

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
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
		in, err := ParseInbound(body, 4096)
		if err != nil {
			var ve *ValidationError
			if !asValidation(err, &ve) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if !utf8.ValidString(ve.Reason) || len(ve.Reason) > 200 || len(ve.RequestID) > MaxIDLength {
				t.Fatalf("bad refusal %+v", ve)
			}
			if ve.Code != CodeInvalidMessage {
				t.Fatalf("code %s", ve.Code)
			}
			return
		}
		if in.Version != Version {
			t.Fatalf("accepted version %d", in.Version)
		}
		switch in.Type {
		case TypeRequest:
			if in.ID == "" || in.Action == "" || len(in.ID) > MaxIDLength || len(in.Action) > MaxIDLength {
				t.Fatalf("accepted request without id/action: %+v", in)
			}
			if in.Payload != nil && !json.Valid(in.Payload) {
				t.Fatalf("accepted invalid payload %q", in.Payload)
			}
		case TypeCancel, TypeResume:
			if in.RequestID == "" || len(in.RequestID) > MaxIDLength {
				t.Fatalf("accepted %s without request_id", in.Type)
			}
		case TypePing:
		case TypeSubscribe, TypeUnsubscribe, TypePublish, TypePresence:
			if in.ID == "" || len(in.ID) > MaxIDLength || CheckChannelName(in.Channel) != nil {
				t.Fatalf("accepted %s without id or with a bad channel: %+v", in.Type, in)
			}
			if in.Since != nil && (in.Type != TypeSubscribe || in.Since.Offset < 0 || in.Since.Epoch == "") {
				t.Fatalf("accepted since %+v on %s", in.Since, in.Type)
			}
			if in.Type == TypePublish && (in.Data == nil || !json.Valid(in.Data)) {
				t.Fatalf("accepted publish with data %q", in.Data)
			}
		default:
			t.Fatalf("accepted type %q", in.Type)
		}
	})
}

func asValidation(err error, target **ValidationError) bool {
	ve, ok := err.(*ValidationError)
	if ok {
		*target = ve
	}
	return ok
}
