package streamer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/streamer-go/streamer/pkg/protocol"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrUnauthorized means a $connect request carried no valid token. The
	// adapters answer it with 401 and store nothing.
	ErrUnauthorized = errors.New("streamer: unauthorized")
	// ErrProcessorClosed is returned by a Processor after Shutdown.
	ErrProcessorClosed = errors.New("streamer: processor closed")
	// ErrQueueFull means the in-process queue had no room; the router
	// answers the client with RATE_LIMITED and stores nothing.
	ErrQueueFull = errors.New("streamer: processor queue full")
)

// ClientError is an error whose code and message are meant for the client.
// A handler returns one (see [NewClientError]) to fail a request with a
// specific code; any other error reaches the client as a generic INTERNAL
// error so internal details never leak.
type ClientError struct {
	Code    protocol.ErrorCode
	Message string
	// Err is an optional cause, logged but never sent.
	Err error
	// RetryAfter, when positive, tells the client how long to wait before
	// sending the message again (the error's retry_after_ms).
	RetryAfter time.Duration
}

// NewClientError returns a ClientError with the given code and message.
func NewClientError(code protocol.ErrorCode, message string) *ClientError {
	return &ClientError{Code: code, Message: message}
}

// Error returns the code and message, and the cause if any.
func (e *ClientError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("streamer: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("streamer: %s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *ClientError) Unwrap() error { return e.Err }

// RetryableError marks a failure of an async handler as transient: the
// processor puts the request back in the queue with backoff instead of
// failing it, up to the processor's attempt limit. Create one with
// [Retryable]; the processor finds it with errors.As, never by error text.
type RetryableError struct {
	Err error
}

// Retryable marks err as transient. Retryable(nil) is nil.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err}
}

// Error returns the transient error's text, marked retryable.
func (e *RetryableError) Error() string { return "streamer: retryable: " + e.Err.Error() }

// Unwrap returns the transient error.
func (e *RetryableError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is, or wraps, a RetryableError.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}

// Generic client-facing messages. They say what happened, never why in
// terms of our internals.
const (
	msgInternal  = "internal error"
	msgTimeout   = "request timed out"
	msgCancelled = "request cancelled"
)

// classify turns a handler's error into the code and message the client
// sees. Only a ClientError's own message is passed through.
func classify(err error) (protocol.ErrorCode, string) {
	var ce *ClientError
	switch {
	case errors.As(err, &ce):
		return ce.Code, ce.Message
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.CodeTimeout, msgTimeout
	case errors.Is(err, context.Canceled):
		return protocol.CodeCancelled, msgCancelled
	default:
		return protocol.CodeInternal, msgInternal
	}
}

// panicError is what a recovered handler panic becomes: INTERNAL for the
// client, the panic value and stack for the log.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("streamer: handler panicked: %v", e.value) }
