package connection

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors. The errors the Manager returns wrap one of these (and,
// where there was one, the AWS SDK's own error, so errors.As with
// *types.GoneException and friends works too). Branch with errors.Is.
var (
	// ErrConnectionNotFound means the store has no record of the
	// connection. It also matches store.ErrNotFound.
	ErrConnectionNotFound = errors.New("connection: not found")
	// ErrConnectionStale means API Gateway answered 410 Gone: the client
	// has disconnected. The manager has removed the record.
	ErrConnectionStale = errors.New("connection: stale (gone)")
	// ErrInvalidMessage means the message could not be encoded (JSON
	// marshalling failed). Nothing was sent.
	ErrInvalidMessage = errors.New("connection: invalid message")
	// ErrMessageTooLarge means the encoded message exceeds MaxMessageBytes
	// (or API Gateway answered 413). Nothing was delivered.
	ErrMessageTooLarge = errors.New("connection: message too large")
	// ErrBroadcastPartialFailure is matched by the *BroadcastError a
	// Broadcast returns when at least one ID failed.
	ErrBroadcastPartialFailure = errors.New("connection: broadcast partially failed")
	// ErrCircuitOpen means the connection's circuit breaker is open after
	// repeated failures; no request was made.
	ErrCircuitOpen = errors.New("connection: circuit open")
	// ErrNotOwnEndpoint means a Broadcast could not read the connection's
	// route, posted through the manager's endpoint and got 410 there: the
	// connection may live behind another endpoint, so its record was
	// kept.
	ErrNotOwnEndpoint = errors.New("connection: gone from an endpoint that may not be its own")
	// ErrNoCredentials means the client found no AWS credentials to sign
	// the call with; no request was made.
	ErrNoCredentials = errors.New("connection: no AWS credentials to sign @connections calls")
	// ErrShuttingDown means Shutdown has started; no new work is accepted.
	ErrShuttingDown = errors.New("connection: manager shutting down")
)

// BroadcastError reports the IDs a Broadcast could not deliver to. Every
// other ID was delivered. errors.Is(err, ErrBroadcastPartialFailure) holds.
type BroadcastError struct {
	// Total is the number of distinct IDs the Broadcast was asked to reach.
	Total int
	// Failed maps each failed connection ID to its cause, which wraps the
	// same sentinels Send returns (ErrConnectionStale, ErrCircuitOpen, the
	// context's error for IDs left unsent at cancellation, ...).
	Failed map[string]error
}

// Error summarises the failure with a few example IDs.
func (e *BroadcastError) Error() string {
	ids := make([]string, 0, len(e.Failed))
	for id := range e.Failed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	fmt.Fprintf(&b, "connection: broadcast failed for %d of %d connections", len(e.Failed), e.Total)
	for i, id := range ids {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(ids)-3)
			break
		}
		fmt.Fprintf(&b, "; %s: %v", id, e.Failed[id])
	}
	return b.String()
}

// Is makes errors.Is(err, ErrBroadcastPartialFailure) true.
func (e *BroadcastError) Is(target error) bool { return target == ErrBroadcastPartialFailure }
