package protocol

import "encoding/json"

// Version is the wire protocol version this package speaks. Every
// message carries it in the "v" field; a client that omits it is assumed
// to speak version 1.
const Version = 1

// MessageType names a wire message.
type MessageType string

// Client → server message types.
const (
	TypeRequest MessageType = "request"
	TypeCancel  MessageType = "cancel"
	TypeResume  MessageType = "resume"
	TypePing    MessageType = "ping"
)

// Server → client message types.
const (
	TypeAck      MessageType = "ack"
	TypeResponse MessageType = "response"
	TypeProgress MessageType = "progress"
	TypeComplete MessageType = "complete"
	TypeError    MessageType = "error"
	TypePong     MessageType = "pong"
	// TypeRelay carries content one client sent for others (see Relay).
	TypeRelay MessageType = "relay"
)

// ErrorCode is the machine-readable code of an error message.
type ErrorCode string

// Error codes sent to clients. Internal details never reach the client:
// the message that goes with INTERNAL is generic.
const (
	CodeInvalidMessage ErrorCode = "INVALID_MESSAGE"
	CodeUnknownAction  ErrorCode = "UNKNOWN_ACTION"
	CodeUnauthorized   ErrorCode = "UNAUTHORIZED"
	CodeForbidden      ErrorCode = "FORBIDDEN"
	CodeNotFound       ErrorCode = "NOT_FOUND"
	CodeRateLimited    ErrorCode = "RATE_LIMITED"
	CodeTimeout        ErrorCode = "TIMEOUT"
	CodeInternal       ErrorCode = "INTERNAL"
	CodeCancelled      ErrorCode = "CANCELLED"
	// CodeRequestLost is the final error of an async request whose
	// server record vanished, or whose end the store refused for a reason
	// other than another worker owning it, while it ran: deleted, expired,
	// or lost with a table that was wiped or restored from an older
	// backup. The request would never end otherwise, so the server sends
	// this rather than leave the client waiting; the client may submit the
	// work again (under a new id: the old one may come back with an old
	// backup). See docs/PROTOCOL.md.
	CodeRequestLost ErrorCode = "REQUEST_LOST"
)

// Inbound is a client → server message: request, cancel, resume, ping, or
// one of the channel messages (subscribe, unsubscribe, publish, presence).
//
//	{"v":1,"type":"request","id":"c-1","action":"echo","payload":{...}}
//	{"v":1,"type":"cancel","request_id":"r-..."}
//	{"v":1,"type":"resume","request_id":"r-..."}
//	{"v":1,"type":"ping"}
type Inbound struct {
	Version int         `json:"v,omitempty"`
	Type    MessageType `json:"type"`
	// ID is the client's own id of a request.
	ID      string          `json:"id,omitempty"`
	Action  string          `json:"action,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// RequestID is the server request id (from an ack) for cancel and resume.
	RequestID string `json:"request_id,omitempty"`
	// Channel, Since and Data belong to the channel messages (subscribe,
	// unsubscribe, publish, presence; see channel.go).
	Channel string          `json:"channel,omitempty"`
	Since   *Since          `json:"since,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Ack tells the client its async request was queued. RequestID is the
// server's id, which cancel and resume use; ID echoes the client's id.
type Ack struct {
	Version   int         `json:"v"`
	Type      MessageType `json:"type"`
	ID        string      `json:"id,omitempty"`
	RequestID string      `json:"request_id"`
	Action    string      `json:"action,omitempty"`
	// Attempt is the run the request is on: 1 until a run fails
	// retryably or its worker is lost, then 2, 3, ... (see
	// docs/PROTOCOL.md).
	Attempt int `json:"attempt,omitempty"`
}

// Response answers a sync request. RequestID is the client's id.
type Response struct {
	Version   int             `json:"v"`
	Type      MessageType     `json:"type"`
	RequestID string          `json:"request_id"`
	Data      json.RawMessage `json:"data"`
}

// Progress reports how far an async request has come.
type Progress struct {
	Version    int             `json:"v"`
	Type       MessageType     `json:"type"`
	RequestID  string          `json:"request_id"`
	Percentage float64         `json:"percentage"`
	Message    string          `json:"message,omitempty"`
	Details    json.RawMessage `json:"details,omitempty"`
	// Attempt is the run this progress belongs to, 1 on the first; a
	// higher number than before means the request restarted, so its
	// percentage may go back.
	Attempt int `json:"attempt,omitempty"`
}

// Complete carries the result of an async request.
type Complete struct {
	Version   int             `json:"v"`
	Type      MessageType     `json:"type"`
	RequestID string          `json:"request_id"`
	Result    json.RawMessage `json:"result"`
}

// Error reports a failure. RequestID is set when the failure concerns a
// known request: the client's id for sync requests and validation errors,
// the server's id for async ones.
type Error struct {
	Version   int         `json:"v"`
	Type      MessageType `json:"type"`
	RequestID string      `json:"request_id,omitempty"`
	Code      ErrorCode   `json:"code"`
	Message   string      `json:"message"`
	// RetryAfterMs, when set, is how long (in milliseconds) to wait before
	// sending the refused message again: with OVERLOADED, for instance.
	RetryAfterMs int64 `json:"retry_after_ms,omitempty"`
}

// Pong answers a ping.
type Pong struct {
	Version int         `json:"v"`
	Type    MessageType `json:"type"`
}

// Relay carries content that one client sent for others, such as an app's
// broadcast: Data is the content exactly as sent, Info names the sender.
// A server relays client content only inside this envelope, so whatever
// the content says (even {"type":"complete",...}) no client takes it for
// a protocol message about its own requests.
//
//	{"v":1,"type":"relay","data":{...},"info":{"user_id":"alice"}}
type Relay struct {
	Version int             `json:"v"`
	Type    MessageType     `json:"type"`
	Data    json.RawMessage `json:"data"`
	Info    *ClientInfo     `json:"info,omitempty"`
}

// NewRelay returns a relay message; info may be nil.
func NewRelay(data json.RawMessage, info *ClientInfo) Relay {
	return Relay{Version: Version, Type: TypeRelay, Data: data, Info: info}
}

// NewAck returns an ack message for attempt 1; set Attempt for a later one.
func NewAck(clientID, requestID, action string) Ack {
	return Ack{Version: Version, Type: TypeAck, ID: clientID, RequestID: requestID, Action: action, Attempt: 1}
}

// NewResponse returns a response message.
func NewResponse(requestID string, data json.RawMessage) Response {
	return Response{Version: Version, Type: TypeResponse, RequestID: requestID, Data: data}
}

// NewProgress returns a progress message of attempt 1; set Attempt for a
// later one.
func NewProgress(requestID string, percentage float64, message string, details json.RawMessage) Progress {
	return Progress{Version: Version, Type: TypeProgress, RequestID: requestID, Percentage: percentage, Message: message, Details: details, Attempt: 1}
}

// NewComplete returns a complete message.
func NewComplete(requestID string, result json.RawMessage) Complete {
	return Complete{Version: Version, Type: TypeComplete, RequestID: requestID, Result: result}
}

// NewError returns an error message.
func NewError(requestID string, code ErrorCode, message string) Error {
	return Error{Version: Version, Type: TypeError, RequestID: requestID, Code: code, Message: message}
}

// NewPong returns a pong message.
func NewPong() Pong {
	return Pong{Version: Version, Type: TypePong}
}
