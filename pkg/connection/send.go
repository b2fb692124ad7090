package connection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
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
	ctx, done, err := m.life.begin(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	m.metrics.activeSends.Add(1)
	defer m.metrics.activeSends.Add(-1)

	start := m.cfg.clock.Now()
	k, err := m.send(ctx, connectionID, data)
	m.metrics.sendLatency.Record(m.cfg.clock.Now().Sub(start).Microseconds())
	m.metrics.outcome(k)
	if err != nil {
		m.log(ctx, slog.LevelDebug, "connection: send failed",
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

func (m *Manager) send(ctx context.Context, connectionID string, data []byte) (kind, error) {
	if connectionID == "" {
		return kindNotFound, fmt.Errorf("%w: empty connection ID: %w", ErrConnectionNotFound, store.ErrNotFound)
	}
	rec, err := m.store.Get(ctx, connectionID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return kindNotFound, fmt.Errorf("%w: %s: %w", ErrConnectionNotFound, connectionID, err)
	case err != nil && ctx.Err() != nil:
		return kindCanceled, fmt.Errorf("connection: send to %s: %w", connectionID, ctxError(ctx))
	case err != nil:
		return kindOther, fmt.Errorf("connection: send to %s: store: %w", connectionID, err)
	}
	t, ok := m.conns.allow(connectionID)
	if !ok {
		return kindCircuitOpen, fmt.Errorf("%w: %s", ErrCircuitOpen, connectionID)
	}
	k, err := m.post(ctx, rec.Endpoint, connectionID, data)
	m.conns.record(connectionID, t, k)
	switch k {
	case kindOK:
		m.refreshLastPing(ctx, connectionID, rec.LastPing)
	case kindGone:
		m.removeGone(ctx, connectionID)
	}
	return k, err
}

// post sends data to one connection with retries and wraps the final
// error in the sentinel callers branch on.
func (m *Manager) post(ctx context.Context, endpoint, connectionID string, data []byte) (kind, error) {
	client, opts := m.clients.forEndpoint(endpoint)
	k, attempts, err := m.withRetries(ctx, connectionID, m.poster(client, opts, data, connectionID))
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
	if err := m.store.Delete(ctx, connectionID); err != nil {
		m.log(ctx, slog.LevelWarn, "connection: removing gone connection failed",
			slog.String("connection_id", connectionID), slog.Any("error", err))
		return
	}
	m.log(ctx, slog.LevelInfo, "connection: removed gone connection", slog.String("connection_id", connectionID))
}

// refreshLastPing starts a background LastPing write if the connection's
// LastPing is more than a minute old and no write is already recent. The
// write outlives the Send (its context is detached from the caller's) and
// is tracked by Flush and Shutdown.
func (m *Manager) refreshLastPing(ctx context.Context, connectionID string, stored time.Time) {
	now := m.cfg.clock.Now()
	if !m.conns.claimLastPing(connectionID, stored, now, m.cfg.lastPingGap) {
		return
	}
	bctx, done, err := m.life.begin(context.WithoutCancel(ctx), true)
	if err != nil {
		return
	}
	go func() {
		defer done()
		wctx, cancel := context.WithTimeout(bctx, m.cfg.lastPingTime)
		defer cancel()
		if err := m.store.UpdateLastPing(wctx, connectionID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log(bctx, slog.LevelWarn, "connection: LastPing update failed",
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
	ctx, done, err := m.life.begin(ctx, false)
	if err != nil {
		return false
	}
	defer done()
	rec, err := m.store.Get(ctx, connectionID)
	if err != nil {
		return false
	}
	client, opts := m.clients.forEndpoint(rec.Endpoint)
	input := &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(connectionID)}
	k, _, err := m.withRetries(ctx, connectionID, func(ctx context.Context) error {
		_, err := client.GetConnection(ctx, input, opts...)
		return err
	})
	if k == kindGone {
		m.removeGone(ctx, connectionID)
	}
	if err != nil {
		m.log(ctx, slog.LevelDebug, "connection: IsActive check failed",
			slog.String("connection_id", connectionID), slog.String("cause", k.String()), slog.Any("error", err))
	}
	return k == kindOK
}
