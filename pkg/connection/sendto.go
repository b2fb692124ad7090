package connection

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// SendTo delivers message to one connection through the management
// endpoint given ("" = the manager's), without reading the connection's
// record: a reply to a message goes through the endpoint the message's
// event names, so it reaches the client even when the store has lost the
// record or cannot be read. It checks the circuit breaker and retries as
// Send does; a 410 Gone from that endpoint (the connection's own) removes
// the record, if any, and returns an error matching ErrConnectionStale.
func (m *Manager) SendTo(ctx context.Context, endpoint, connectionID string, message any) error {
	data, err := Encode(message)
	if err != nil {
		m.metrics.outcome(kindOfEncodeError(err))
		return err
	}
	u, err := m.life.begin(ctx, false, m.clients.base.bounded())
	if err != nil {
		return err
	}
	defer u.done()
	m.metrics.activeSends.Add(1)
	defer m.metrics.activeSends.Add(-1)

	start := m.cfg.clock.Now()
	k, err := m.sendTo(&u, endpoint, connectionID, data, start)
	m.metrics.sendLatency.Record(m.cfg.clock.Now().Sub(start).Microseconds())
	m.metrics.outcome(k)
	if err != nil {
		m.log(u.ctx, slog.LevelDebug, "connection: send failed",
			slog.String("connection_id", connectionID), slog.String("endpoint", endpoint), slog.String("cause", k.String()), slog.Any("error", err))
	}
	return err
}

func (m *Manager) sendTo(u *unit, endpoint, connectionID string, data []byte, start time.Time) (kind, error) {
	if connectionID == "" {
		return kindNotFound, fmt.Errorf("%w: empty connection ID: %w", ErrConnectionNotFound, store.ErrNotFound)
	}
	t, ok := m.conns.allow(connectionID, start)
	if !ok {
		return kindCircuitOpen, fmt.Errorf("%w: %s", ErrCircuitOpen, connectionID)
	}
	k, err := m.post(u, endpoint, connectionID, data)
	m.conns.record(connectionID, t, k, m.cfg.clock.Now())
	if k == kindGone {
		m.removeGone(u.ctx, connectionID)
	}
	return k, err
}
