package connection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// Send delivers message to one connection: it looks the connection up in
// the store (ErrConnectionNotFound, with no HTTP call, if absent), checks
// its circuit breaker (ErrCircuitOpen), and posts the encoded message to
// the connection's endpoint (the record's Endpoint, or the manager's when
// empty), retrying as the RetryPolicy says. A 410 Gone
// removes the record and returns an error matching ErrConnectionStale.
// A success refreshes the record's LastPing at most once a minute, in the
// background (see Flush).
func (m *Manager) Send(ctx context.Context, connectionID string, message any) error {
	data, err := Encode(message)
	if err != nil {
		m.metrics.outcome(kindOfEncodeError(err))
		return err
	}
	// Lazy when the transport bounds its attempts itself: the Send then
	// needs no context of its own (see post).
	u, err := m.life.begin(ctx, false, m.clients.base.bounded())
	if err != nil {
		return err
	}
	defer u.done()
	m.metrics.activeSends.Add(1)
	defer m.metrics.activeSends.Add(-1)

	start := m.cfg.clock.Now()
	k, end, err := m.send(&u, connectionID, data, start)
	if end.IsZero() {
		end = m.cfg.clock.Now()
	}
	m.metrics.sendLatency.Record(end.Sub(start).Microseconds())
	m.metrics.outcome(k)
	if err != nil {
		m.log(u.ctx, slog.LevelDebug, "connection: send failed",
			slog.String("connection_id", connectionID), slog.String("cause", k.String()), slog.Any("error", err))
	}
	return err
}

func kindOfEncodeError(err error) kind {
	if errors.Is(err, ErrMessageTooLarge) {
		return kindPayloadTooLarge
	}
	return kindInvalid
}

// send is Send once the message is encoded: start is the manager's clock
// when the Send began, and end, which send returns, when its call was
// done (zero if it made none). Each reading serves every part of the Send
// that needs the time then.
func (m *Manager) send(u *unit, connectionID string, data []byte, start time.Time) (k kind, end time.Time, err error) {
	if connectionID == "" {
		return kindNotFound, time.Time{}, fmt.Errorf("%w: empty connection ID: %w", ErrConnectionNotFound, store.ErrNotFound)
	}
	rec, err := m.route(u.ctx, connectionID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return kindNotFound, time.Time{}, fmt.Errorf("%w: %s: %w", ErrConnectionNotFound, connectionID, err)
	case err != nil && u.ctx.Err() != nil:
		return kindCanceled, time.Time{}, fmt.Errorf("connection: send to %s: %w", connectionID, ctxError(u.ctx))
	case err != nil && u.stopped():
		return kindCanceled, time.Time{}, fmt.Errorf("connection: send to %s: %w: %w", connectionID, errStopped, err)
	case err != nil:
		return kindOther, time.Time{}, fmt.Errorf("connection: send to %s: store: %w", connectionID, err)
	}
	t, ok := m.conns.allow(connectionID, start)
	if !ok {
		return kindCircuitOpen, time.Time{}, fmt.Errorf("%w: %s", ErrCircuitOpen, connectionID)
	}
	k, err = m.post(u, rec.Endpoint, connectionID, data)
	end = m.cfg.clock.Now()
	m.conns.record(connectionID, t, k, end)
	switch k {
	case kindOK:
		m.refreshLastPing(u.ctx, connectionID, rec.LastPing, end)
	case kindGone:
		m.removeGone(u.ctx, connectionID)
	}
	return k, end, err
}

// route looks up where to send to connectionID, through the store's
// GetRoute when it has one: a Send needs two fields of the record, and
// Get copies all of it (the Permissions and Metadata too, on every Send).
func (m *Manager) route(ctx context.Context, connectionID string) (store.Route, error) {
	if m.routes != nil {
		return m.routes.GetRoute(ctx, connectionID)
	}
	c, err := m.store.Get(ctx, connectionID)
	if err != nil {
		return store.Route{}, err
	}
	return store.Route{Endpoint: c.Endpoint, LastPing: c.LastPing}, nil
}

// post sends data to one connection with retries through the transport
// of its endpoint and wraps the final error in the sentinel callers
// branch on. What the transport needs computed per message (the SigV4
// payload hash) is computed once for all the retries. The calls are
// closures that do not escape, so they cost no allocation.
func (m *Manager) post(u *unit, endpoint, connectionID string, data []byte) (kind, error) {
	t := m.clients.forEndpoint(endpoint)
	hash := t.prepare(data)
	if !t.bounded() {
		// Its attempts run under a context the unit derives, which the
		// watchdog cancels at the attempt timeout and Shutdown at once.
		u.derive()
	}
	k, attempts, err := m.withRetries(u, connectionID, func() (kind, uint64, error) {
		return m.sendAttempt(u, connectionID, t, data, hash)
	})
	return k, wrapPostError(k, connectionID, attempts, err)
}

// wrapPostError gives a failed post's error the sentinel for its kind,
// keeping the SDK error inside for errors.As.
func wrapPostError(k kind, connectionID string, attempts int, err error) error {
	switch k {
	case kindOK:
		return nil
	case kindGone:
		return fmt.Errorf("%w: %s: %w", ErrConnectionStale, connectionID, err)
	case kindPayloadTooLarge:
		return fmt.Errorf("%w: %s: %w", ErrMessageTooLarge, connectionID, err)
	case kindCanceled:
		return fmt.Errorf("connection: send to %s: %w", connectionID, err)
	}
	return fmt.Errorf("connection: send to %s failed after %d attempt(s): %w", connectionID, attempts, err)
}

// removeGone deletes a connection API Gateway says is gone, and forgets
// its breaker.
func (m *Manager) removeGone(ctx context.Context, connectionID string) {
	m.conns.forget(connectionID)
	m.routeCache.forget(connectionID)
	if err := m.store.Delete(ctx, connectionID); err != nil {
		m.log(ctx, slog.LevelWarn, "connection: removing gone connection failed",
			slog.String("connection_id", connectionID), slog.Any("error", err))
		return
	}
	m.log(ctx, slog.LevelInfo, "connection: removed gone connection", slog.String("connection_id", connectionID))
}

// refreshLastPing starts a background LastPing write if the connection's
// LastPing is more than a minute old at now and no write is already recent. The
// write outlives the Send (its context is detached from the caller's) and
// is tracked by Flush and Shutdown.
func (m *Manager) refreshLastPing(ctx context.Context, connectionID string, stored, now time.Time) {
	if !m.conns.claimLastPing(connectionID, stored, now, m.cfg.lastPingGap) {
		return
	}
	u, err := m.life.begin(context.WithoutCancel(ctx), true, false)
	if err != nil {
		return
	}
	go func() {
		defer u.done()
		wctx, cancel := context.WithTimeout(u.ctx, m.cfg.lastPingTime)
		defer cancel()
		if err := m.store.UpdateLastPing(wctx, connectionID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log(u.ctx, slog.LevelWarn, "connection: LastPing update failed",
				slog.String("connection_id", connectionID), slog.Any("error", err))
		}
	}()
}

// IsActive reports whether the connection is live: its record exists and
// API Gateway answers GET /@connections/{id} with 200. A 410 removes the
// record. It never sends anything to the client. Any other failure
// (throttling after retries, a cancelled ctx, Shutdown) reports false.
func (m *Manager) IsActive(ctx context.Context, connectionID string) bool {
	if connectionID == "" {
		return false
	}
	u, err := m.life.begin(ctx, false, false)
	if err != nil {
		return false
	}
	defer u.done()
	rec, err := m.route(u.ctx, connectionID)
	if err != nil {
		return false
	}
	t := m.clients.forEndpoint(rec.Endpoint)
	k, _, err := m.withRetries(&u, connectionID, func() (kind, uint64, error) {
		return m.unitAttempt(&u, connectionID, func(ctx context.Context) error {
			return t.get(ctx, connectionID)
		})
	})
	if k == kindGone {
		m.removeGone(u.ctx, connectionID)
	}
	if err != nil {
		m.log(u.ctx, slog.LevelDebug, "connection: IsActive check failed",
			slog.String("connection_id", connectionID), slog.String("cause", k.String()), slog.Any("error", err))
	}
	return k == kindOK
}
