package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Limits of inbound messages.
const (
	// DefaultMaxMessageBytes is API Gateway's message quota (128 KiB).
	DefaultMaxMessageBytes = 128 * 1024
	// MaxIDLength bounds client ids, server request ids and action names.
	MaxIDLength = 128
)

// ValidationError is why an inbound message was refused. A router sends
// it to the client as INVALID_MESSAGE or UNKNOWN_ACTION; RequestID is the
// client's id (or the request_id of a cancel/resume) when it could be read.
type ValidationError struct {
	Code      ErrorCode
	RequestID string
	Reason    string
}

// Error returns the code and reason.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("protocol: %s: %s", e.Code, e.Reason)
}

func invalid(id, format string, args ...any) *ValidationError {
	return &ValidationError{Code: CodeInvalidMessage, RequestID: id, Reason: fmt.Sprintf(format, args...)}
}

// ParseInbound decodes and validates one client message: size, JSON,
// version, type and the fields each type requires. It is the only place
// that validates the envelope; handlers see only messages that passed.
// maxBytes <= 0 means DefaultMaxMessageBytes. Whether the action exists is
// the router's question, not this function's.
func ParseInbound(body []byte, maxBytes int) (*Inbound, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxMessageBytes
	}
	if len(body) > maxBytes {
		return nil, invalid("", "message is %d bytes, the limit is %d", len(body), maxBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("", "message is empty")
	}
	if !utf8.Valid(body) {
		return nil, invalid("", "message is not valid UTF-8")
	}
	var in Inbound
	if err := json.Unmarshal(body, &in); err != nil {
		// The decoder's text names Go types; the client gets a plain reason.
		return nil, invalid("", "message is not a JSON object with the expected fields")
	}
	// Echo the id back only if it is sane, so an error never reflects junk.
	id := in.ID
	if len(id) > MaxIDLength {
		id = ""
	}
	if in.Type == TypeCancel || in.Type == TypeResume {
		id = in.RequestID
		if len(id) > MaxIDLength {
			id = ""
		}
	}
	switch {
	case in.Version < 0:
		return nil, invalid(id, "protocol version must be positive")
	case in.Version > Version:
		return nil, invalid(id, "protocol version %d is not supported (this server speaks %d)", in.Version, Version)
	}
	if in.Version == 0 {
		in.Version = Version
	}
	switch in.Type {
	case "":
		return nil, invalid(id, "type is required")
	case TypePing:
		return &in, nil
	case TypeRequest:
		switch {
		case in.ID == "":
			return nil, invalid("", "id is required")
		case len(in.ID) > MaxIDLength:
			return nil, invalid("", "id is longer than %d bytes", MaxIDLength)
		case in.Action == "":
			return nil, invalid(in.ID, "action is required")
		case len(in.Action) > MaxIDLength:
			return nil, invalid(in.ID, "action is longer than %d bytes", MaxIDLength)
		}
		if isJSONNull(in.Payload) {
			in.Payload = nil
		}
		return &in, nil
	case TypeCancel, TypeResume:
		switch {
		case in.RequestID == "":
			return nil, invalid("", "request_id is required")
		case len(in.RequestID) > MaxIDLength:
			return nil, invalid("", "request_id is longer than %d bytes", MaxIDLength)
		}
		return &in, nil
	case TypeSubscribe, TypeUnsubscribe, TypePublish, TypePresence:
		if ve := checkChannelMessage(&in); ve != nil {
			return nil, ve
		}
		return &in, nil
	default:
		return nil, invalid(id, "unknown message type %q", truncate(string(in.Type), 32))
	}
}

func isJSONNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the error message stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// PeekID returns the client's id of a message without validating it
// further, for answers given before parsing (rate limiting); "" when it
// cannot be read.
func PeekID(body []byte) string {
	if len(body) > DefaultMaxMessageBytes {
		return ""
	}
	var in struct {
		ID        string `json:"id"`
		RequestID string `json:"request_id"`
		Type      string `json:"type"`
	}
	if json.Unmarshal(body, &in) != nil {
		return ""
	}
	id := in.ID
	if in.Type == string(TypeCancel) || in.Type == string(TypeResume) {
		id = in.RequestID
	}
	if len(id) > MaxIDLength || !utf8.ValidString(id) {
		return ""
	}
	return id
}
