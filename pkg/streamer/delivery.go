package streamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
)

// ErrNoLiveConnection means a message about a request could not be
// delivered because none of its user's connections is alive. The request's
// state is in the store, so the client gets it with resume when it comes
// back.
var ErrNoLiveConnection = errors.New("streamer: user has no live connection")

// target delivers one request's messages. Results follow the user, not the
// socket: messages go to the connection that sent the request while it is
// alive; once API Gateway reports it gone, to every live connection of the
// same user (a reconnected client included).
type target struct {
	p  *Processor
	ar *store.AsyncRequest

	// The publisher's goroutine and the processor send through the same
	// target, one after the other; mu keeps the bookkeeping consistent.
	mu        sync.Mutex
	gone      bool // the original connection is gone
	others    []string
	othersAt  time.Time
	deadConns map[string]bool
}

func newTarget(p *Processor, ar *store.AsyncRequest) *target {
	return &target{p: p, ar: ar}
}

// follow makes the connection a stored record names (a client resumed the
// request there) the first choice for the messages still to come.
func (t *target) follow(ar *store.AsyncRequest) {
	if ar == nil || ar.ConnectionID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ar.ConnectionID == t.ar.ConnectionID {
		return
	}
	moved := *t.ar
	moved.ConnectionID = ar.ConnectionID
	t.ar = &moved
	t.gone = false
	t.others, t.othersAt = nil, time.Time{}
}

// current returns the record the target sends for: the request's, with
// the connection it follows now.
func (t *target) current() *store.AsyncRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ar
}

// isGone reports whether err means the connection no longer exists.
func isGone(err error) bool {
	return errors.Is(err, connection.ErrConnectionStale) || errors.Is(err, connection.ErrConnectionNotFound)
}

// send delivers message and returns the delivery error, which callers log
// at most: the outcome is already in the store.
func (t *target) send(ctx context.Context, message any) error {
	sender := t.p.sender
	t.mu.Lock()
	gone, ar := t.gone, t.ar
	t.mu.Unlock()
	var first error // why the original connection failed, when it is not gone
	if !gone {
		// The first choice gets half the time left at most: a connection
		// behind a frozen process never answers, and the rest of the time
		// is for the user's other connections.
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			fctx, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		}
		err := sender.Send(fctx, ar.ConnectionID, message)
		timedOut := fctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case err == nil:
			return nil
		case isGone(err):
			t.mu.Lock()
			t.gone = true
			t.mu.Unlock()
		case !unreachable(ctx, err) && !timedOut:
			return err
		default:
			// The connection's endpoint does not answer (its breaker is
			// open, or the process serving it died without API Gateway's
			// 410, as a local runtime does): the user may be back
			// elsewhere. The original stays first choice for later
			// messages.
			first = err
		}
	}
	ids, err := t.userConnections(ctx)
	if err != nil {
		if first != nil && errors.Is(err, ErrNoLiveConnection) {
			// No other connection to try: the original did not answer,
			// which is not the same as not being there.
			return first
		}
		return errors.Join(first, err)
	}
	delivered := 0
	for _, id := range ids {
		err := sender.Send(ctx, id, message)
		switch {
		case err == nil:
			delivered++
		case isGone(err):
			t.mu.Lock()
			t.deadConns[id] = true
			t.mu.Unlock()
		default:
			t.p.log.DebugContext(ctx, "delivering to user's connection", slog.String("request_id", t.ar.RequestID), slog.String("connection_id", id), slog.Any("error", err))
		}
	}
	if delivered == 0 {
		if first != nil {
			return first
		}
		return fmt.Errorf("%w: request %s", ErrNoLiveConnection, t.ar.RequestID)
	}
	return nil
}

// unreachable reports whether a send failed for a reason that says nothing
// about the message and may be the connection's end: its circuit breaker
// is open or the endpoint did not answer. The caller's context ending, or a
// message that can never be sent, is not.
func unreachable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, connection.ErrMessageTooLarge)
}

// userConnections lists the user's other connections, cached for a moment
// so that a burst of progress messages does not query the store each time.
func (t *target) userConnections(ctx context.Context) ([]string, error) {
	conns := t.p.conns
	if conns == nil {
		return nil, fmt.Errorf("%w: request %s", ErrNoLiveConnection, t.ar.RequestID)
	}
	now := t.p.now()
	t.mu.Lock()
	if t.others != nil && now.Sub(t.othersAt) < t.p.userListTTL {
		ids := t.live()
		t.mu.Unlock()
		return ids, nil
	}
	t.mu.Unlock()
	list, err := conns.ListByUser(ctx, t.ar.UserID)
	if err != nil {
		return nil, fmt.Errorf("streamer: listing connections of the user of %s: %w", t.ar.RequestID, err)
	}
	ids := make([]string, 0, len(list))
	for _, c := range list {
		if c.ConnectionID != t.ar.ConnectionID && c.TenantID == t.ar.TenantID {
			ids = append(ids, c.ConnectionID)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.deadConns = map[string]bool{}
	// An empty list is not cached: the user may reconnect any moment.
	t.others, t.othersAt = nil, time.Time{}
	if len(ids) > 0 {
		t.others, t.othersAt = ids, now
	}
	return ids, nil
}

// live returns the cached ids not known dead. Caller holds mu.
func (t *target) live() []string {
	ids := make([]string, 0, len(t.others))
	for _, id := range t.others {
		if !t.deadConns[id] {
			ids = append(ids, id)
		}
	}
	return ids
}
