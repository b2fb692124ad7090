package connectiontest

import (
	"context"
	"sync"

	"github.com/streamer-go/streamer/pkg/connection"
)

// Sent is one message a Recorder accepted.
type Sent struct {
	ConnectionID string
	// Message is the value given to Send; Data is its encoding, exactly
	// what the Manager would put on the wire.
	Message any
	Data    []byte
}

// Recorder is a recording fake with the Manager's Send and Broadcast, for
// unit tests of code that sends (such as a router's handlers). It encodes
// messages like the Manager (so an unencodable or oversize message fails
// the same way) and records each accepted one. The zero value is ready to
// use and safe for concurrent use.
type Recorder struct {
	// SendFunc, if set, is called for every message before it is
	// recorded; a non-nil error is returned by Send (or reported for that
	// ID by Broadcast) and the message is not recorded. Use it to inject
	// failures such as connection.ErrConnectionStale.
	SendFunc func(ctx context.Context, connectionID string, message any) error

	mu   sync.Mutex
	sent []Sent
}

// Send records message for connectionID.
func (r *Recorder) Send(ctx context.Context, connectionID string, message any) error {
	data, err := connection.Encode(message)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.SendFunc != nil {
		if err := r.SendFunc(ctx, connectionID, message); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, Sent{ConnectionID: connectionID, Message: message, Data: data})
	return nil
}

// Broadcast sends message to each distinct ID, like the Manager: nil if
// all succeeded, else a *connection.BroadcastError.
func (r *Recorder) Broadcast(ctx context.Context, connectionIDs []string, message any) error {
	if _, err := connection.Encode(message); err != nil {
		return err
	}
	seen := make(map[string]bool, len(connectionIDs))
	failed := map[string]error{}
	for _, id := range connectionIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := r.Send(ctx, id, message); err != nil {
			failed[id] = err
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &connection.BroadcastError{Total: len(seen), Failed: failed}
}

// Sent returns every recorded message, in order.
func (r *Recorder) Sent() []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sent(nil), r.sent...)
}

// To returns the encoded messages recorded for connectionID, in order.
func (r *Recorder) To(connectionID string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for _, s := range r.sent {
		if s.ConnectionID == connectionID {
			out = append(out, s.Data)
		}
	}
	return out
}

// Reset forgets what was recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = nil
}
