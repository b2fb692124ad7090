package lambdart

import (
	"encoding/json"
	"errors"
	"fmt"
)

var (
	// ErrTimeout: the invocation ran past the function's timeout; its
	// process was stopped.
	ErrTimeout = errors.New("lambdart: task timed out")
	// ErrExited: the process exited (crashed) before it answered.
	ErrExited = errors.New("lambdart: runtime exited")
	// ErrInit: the process failed to initialise (it reported an init
	// error, or exited before asking for its first invocation).
	ErrInit = errors.New("lambdart: init failed")
	// ErrProtocol: the process broke the Runtime API (an answer for
	// another request, a malformed error document, an oversized
	// response); its process was stopped.
	ErrProtocol = errors.New("lambdart: runtime API misuse")
	// ErrClosed: the function is closed.
	ErrClosed = errors.New("lambdart: function closed")
	// ErrInvalidConfig is returned by New for a Config it cannot run.
	ErrInvalidConfig = errors.New("lambdart: invalid config")
)

// FunctionError is a function's failed invocation, as the runtime
// reported it on /error (or /init/error): Lambda's errorType and
// errorMessage.
type FunctionError struct {
	Type       string          `json:"errorType"`
	Message    string          `json:"errorMessage"`
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
	// Init is set when the error came from /runtime/init/error.
	Init bool `json:"-"`
}

func (e *FunctionError) Error() string {
	if e.Init {
		return fmt.Sprintf("lambdart: init error %s: %s", e.Type, e.Message)
	}
	return fmt.Sprintf("lambdart: function error %s: %s", e.Type, e.Message)
}

// Unwrap makes an init error match ErrInit.
func (e *FunctionError) Unwrap() error {
	if e.Init {
		return ErrInit
	}
	return nil
}
