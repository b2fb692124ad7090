package streamer

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
)

// Identity is who sent a request. It always comes from the connection
// record the $connect handler stored after verifying the token, never from
// the message.
type Identity struct {
	UserID      string
	TenantID    string
	Permissions []string
}

// HasPermission reports whether the identity holds permission p.
func (id Identity) HasPermission(p string) bool {
	return slices.Contains(id.Permissions, p)
}

// Request is what a handler receives.
type Request struct {
	// ID is the client's id of the request.
	ID string
	// RequestID is the server's id of an async request (the one in the
	// ack); empty for sync requests.
	RequestID string
	Action    string
	// Payload is the request's payload as sent; nil when absent or null.
	Payload json.RawMessage
	// ConnectionID is the connection the request arrived on.
	ConnectionID string
	// Identity is the sender's, from the connection record. In an async
	// handler it is the identity the request was queued under, stored
	// with the request: the connection may be gone by the time it runs,
	// and permissions revoked after queueing do not reach it.
	Identity Identity
	// Async is true when the request runs in the processor.
	Async bool
	// Progress is the async request's reporter (nil for sync requests), so
	// middleware can see it; async handlers also receive it as an argument.
	Progress progress.Reporter

	// endpoint is the management endpoint of ConnectionID, from the
	// message's event, where replies go.
	endpoint string
}

// origin is where the request's replies go.
func (req *Request) origin() origin {
	return origin{connectionID: req.ConnectionID, endpoint: req.endpoint}
}

// Handler answers a request. The result is marshalled to JSON and sent as
// the response's data (sync) or the complete message's result (async). A
// *ClientError's code and message reach the client; any other error becomes
// INTERNAL, and for async handlers a [Retryable] error is retried.
type Handler interface {
	ServeRequest(ctx context.Context, req *Request) (any, error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, req *Request) (any, error)

// ServeRequest calls f.
func (f HandlerFunc) ServeRequest(ctx context.Context, req *Request) (any, error) {
	return f(ctx, req)
}

// AsyncHandler runs a queued request, reporting progress as it goes. Its
// ctx is cancelled when the client cancels the request (seen through the
// store), when the processor shuts down, or at the action's timeout.
type AsyncHandler interface {
	ServeAsync(ctx context.Context, req *Request, p progress.Reporter) (any, error)
}

// AsyncHandlerFunc adapts a function to an AsyncHandler.
type AsyncHandlerFunc func(ctx context.Context, req *Request, p progress.Reporter) (any, error)

// ServeAsync calls f.
func (f AsyncHandlerFunc) ServeAsync(ctx context.Context, req *Request, p progress.Reporter) (any, error) {
	return f(ctx, req, p)
}

// Middleware wraps a Handler. The router applies the same middleware to
// sync and async handlers alike: an async handler is seen as a Handler
// whose Request has Async set and Progress filled in.
type Middleware func(next Handler) Handler

// asyncAsHandler presents an AsyncHandler as a Handler so middleware wraps
// both kinds the same way.
type asyncAsHandler struct{ h AsyncHandler }

func (a asyncAsHandler) ServeRequest(ctx context.Context, req *Request) (any, error) {
	return a.h.ServeAsync(ctx, req, req.Progress)
}

// payloadChecker is implemented by the typed handlers of HandlerOf and
// AsyncHandlerOf so the router can refuse a malformed payload before an
// async request is queued rather than after.
type payloadChecker interface {
	checkPayload(payload json.RawMessage) error
}

// Decode unmarshals the request's payload into a T. A payload that does not
// fit is a *ClientError with code INVALID_MESSAGE (the decoder's own text,
// which names Go types, is kept as the cause for logs only). An absent
// payload decodes as JSON null, leaving T's zero value.
func Decode[T any](req *Request) (T, error) {
	return decodePayload[T](req.Action, req.Payload)
}

func decodePayload[T any](action string, payload json.RawMessage) (T, error) {
	var v T
	if len(payload) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		return v, &ClientError{Code: protocol.CodeInvalidMessage, Message: "payload is not valid for action " + truncate(action, protocol.MaxIDLength), Err: err}
	}
	return v, nil
}

// HandlerOf returns a Handler that decodes the payload into a T before
// calling fn, answering INVALID_MESSAGE when it does not fit.
func HandlerOf[T any](fn func(ctx context.Context, req *Request, payload T) (any, error)) Handler {
	return typedHandler[T]{fn: fn}
}

type typedHandler[T any] struct {
	fn func(context.Context, *Request, T) (any, error)
}

func (h typedHandler[T]) ServeRequest(ctx context.Context, req *Request) (any, error) {
	v, err := Decode[T](req)
	if err != nil {
		return nil, err
	}
	return h.fn(ctx, req, v)
}

// AsyncHandlerOf returns an AsyncHandler that decodes the payload into a T
// before calling fn. The router also checks the payload before queueing, so
// a malformed one is refused at once with INVALID_MESSAGE.
func AsyncHandlerOf[T any](fn func(ctx context.Context, req *Request, payload T, p progress.Reporter) (any, error)) AsyncHandler {
	return typedAsyncHandler[T]{fn: fn}
}

type typedAsyncHandler[T any] struct {
	fn func(context.Context, *Request, T, progress.Reporter) (any, error)
}

func (h typedAsyncHandler[T]) ServeAsync(ctx context.Context, req *Request, p progress.Reporter) (any, error) {
	v, err := Decode[T](req)
	if err != nil {
		return nil, err
	}
	return h.fn(ctx, req, v, p)
}

func (h typedAsyncHandler[T]) checkPayload(payload json.RawMessage) error {
	_, err := decodePayload[T]("", payload)
	return err
}
