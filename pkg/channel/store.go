package channel

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrInvalidChannel means a channel name is malformed (see
	// protocol.CheckChannelName).
	ErrInvalidChannel = errors.New("channel: invalid channel name")
	// ErrUnknownNamespace means the channel's namespace is not configured.
	ErrUnknownNamespace = errors.New("channel: unknown namespace")
	// ErrTooLarge means a publication would exceed API Gateway's 128 KiB
	// message limit. Nothing was stored.
	ErrTooLarge = errors.New("channel: publication too large")
	// ErrClosed means Shutdown has started; nothing new is published.
	ErrClosed = errors.New("channel: service closed")
	// ErrOverloaded means a channel's fan-out cannot keep up: the
	// publication waited for room in its queue and was refused. Nothing
	// was stored. The error is an *OverloadedError with a retry hint.
	ErrOverloaded = errors.New("channel: overloaded")
	// ErrInvalidInput is returned by stores for arguments that cannot be
	// stored (empty keys, expiry in the past).
	ErrInvalidInput = errors.New("channel: invalid input")
)

// OverloadedError refuses a publication while its channel's fan-out is
// behind. errors.Is(err, ErrOverloaded) holds.
type OverloadedError struct {
	// RetryAfter is how long the publisher should wait before trying
	// again.
	RetryAfter time.Duration
}

func (e *OverloadedError) Error() string {
	return fmt.Sprintf("channel: overloaded: the fan-out is behind; retry after %v", e.RetryAfter)
}

// Is makes errors.Is(err, ErrOverloaded) true.
func (e *OverloadedError) Is(target error) bool { return target == ErrOverloaded }

// Subscriber is one connection subscribed to a channel, with the user it
// belongs to (which presence lists).
type Subscriber struct {
	ConnectionID string
	UserID       string
}

// Entry is one publication as a store keeps it.
type Entry struct {
	// Offset is assigned by Store.Publish: the channel's previous offset
	// plus one.
	Offset uint64
	// Data is the publication's JSON.
	Data []byte
	// UserID is the publishing client's user; empty when the server
	// published.
	UserID string
	// Lost marks an offset that was taken but whose publication was never
	// stored (its publisher failed between the two, and was never
	// acknowledged): it has no data, counts for the history's contiguity
	// and is never delivered. Only stores that can take an offset and
	// store its entry apart (DynamoStore) return one.
	Lost bool
}

// Position is where a channel's stream is: the offset of its latest
// publication (0 before the first) in an epoch. The epoch changes when the
// channel's counter and history are lost or reset, so an offset of an
// older epoch is never taken for one of the current epoch.
type Position struct {
	Offset uint64
	Epoch  string
}

// HistoryOptions bound a channel's history. Size 0 keeps none (offsets
// still advance); TTL 0 keeps entries until Size pushes them out.
type HistoryOptions struct {
	Size int
	TTL  time.Duration
}

// Store keeps channel state: subscriptions (which are also presence),
// per-channel offset counters and bounded history. Channel keys are opaque
// to a store: the Service passes tenant-scoped keys (see Key). Every
// implementation runs channeltest.Run.
type Store interface {
	// Subscribe adds connection sub.ConnectionID to channel, or refreshes
	// its expiry, and reports whether it added it: of concurrent calls
	// for one connection and channel with none live before, exactly one
	// reports created. Expired subscriptions are never returned by reads.
	Subscribe(ctx context.Context, channel string, sub Subscriber, expires time.Time) (created bool, err error)
	// Unsubscribe removes the connection's subscription to channel and
	// returns it; ok is false when there was none (not an error).
	Unsubscribe(ctx context.Context, channel, connectionID string) (sub Subscriber, ok bool, err error)
	// Subscribers lists channel's live subscriptions, in no set order.
	Subscribers(ctx context.Context, channel string) ([]Subscriber, error)
	// Subscriptions lists the channels connectionID is subscribed to.
	Subscriptions(ctx context.Context, connectionID string) ([]string, error)
	// Publish assigns e the channel's next offset (previous + 1, atomically
	// across every process sharing the store), keeps it in the history as
	// h says, and returns its position.
	Publish(ctx context.Context, channel string, e Entry, h HistoryOptions) (Position, error)
	// History returns the entries still held with an offset above after,
	// in offset order (Lost ones included), and the channel's position.
	// Entries may be missing (trimmed, expired, or still being written by
	// a concurrent publisher): the caller checks contiguity.
	History(ctx context.Context, channel string, after uint64) ([]Entry, Position, error)
	// Position returns the channel's position, creating its epoch if the
	// channel is new.
	Position(ctx context.Context, channel string) (Position, error)
}
