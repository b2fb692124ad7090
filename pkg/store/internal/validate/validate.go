// Package validate holds the input checks every store makes before it
// writes, so the memory and DynamoDB stores refuse exactly the same input
// with the same ErrInvalidInput reasons; the contract suite (storetest)
// holds them to it.
package validate

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/streamer-go/streamer/pkg/store"
)

// invalid names what was wrong and wraps store.ErrInvalidInput.
func invalid(what string) error { return fmt.Errorf("%s: %w", what, store.ErrInvalidInput) }

// NewRequest checks a request about to be enqueued. A negative TTL is
// refused for the reason given at Connection.
func NewRequest(r *store.AsyncRequest) error {
	switch {
	case r == nil:
		return invalid("nil request")
	case r.RequestID == "":
		return invalid("empty request id")
	}
	var what string
	switch {
	case r.ConnectionID == "":
		what = "empty connection id"
	case !JSON(r.Payload):
		what = "payload is not valid JSON"
	case !JSON(r.Result):
		what = "result is not valid JSON"
	case Percent(r.Progress) != nil:
		what = "progress outside 0-100"
	case r.Attempts < 0:
		what = "negative attempts"
	case r.TTL < 0:
		what = "negative ttl"
	default:
		return nil
	}
	return invalid(fmt.Sprintf("request %q: %s", r.RequestID, what))
}

// Connection checks a connection about to be saved. A negative TTL is
// refused rather than stored: DynamoDB's conditions would count it as
// expired where store.Connection.Expired does not, and the stores would
// disagree about the record.
func Connection(c *store.Connection) error {
	switch {
	case c == nil:
		return invalid("nil connection")
	case c.ConnectionID == "":
		return invalid("empty connection id")
	case c.TTL < 0:
		return invalid(fmt.Sprintf("connection %q: negative ttl", c.ConnectionID))
	}
	return nil
}

// Owned checks the arguments of a transition made by a lease owner.
func Owned(requestID, owner string) error {
	if requestID == "" {
		return invalid("empty request id")
	}
	if owner == "" {
		return invalid("empty lease owner")
	}
	return nil
}

// Percent checks a progress percentage: a number from 0 to 100.
func Percent(p float64) error {
	if math.IsNaN(p) || p < 0 || p > 100 {
		return invalid("progress outside 0-100")
	}
	return nil
}

// JSON reports whether raw is empty or valid JSON.
func JSON(raw json.RawMessage) bool { return len(raw) == 0 || json.Valid(raw) }
