package connection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamer-go/streamer/internal/backoff"
	"github.com/streamer-go/streamer/pkg/connection/internal/httppool"
	"github.com/streamer-go/streamer/pkg/store"
)

// Manager sends messages to WebSocket clients through the API Gateway
// Management API. It is safe for concurrent use. Create it with
// NewManager; stop it with Shutdown.
type Manager struct {
	store  store.ConnectionStore
	routes store.RouteGetter // the store, if it is one; else nil
	// routeCache holds the endpoints Broadcast has read.
	routeCache routeCache
	clients    *endpointClients
	cfg        config
	backoff    backoff.Policy
	conns      *connStates
	life       *lifecycle
	metrics    metrics
	pace       *Limiter // nil: no pacing
	// paceRealTime: the Limiter runs on real time, so a Send's attempt
	// can hand it the reading it took already.
	paceRealTime bool
}

// NewManager returns a Manager that looks connections up in st and sends
// through client to endpoint, the management endpoint of the API
// (https://{api}.execute-api.{region}.amazonaws.com/{stage}); "" means
// the client's own endpoint. Connections whose record names another
// Endpoint are sent through a client derived from client for that
// endpoint. client is usually built by NewFastClient or
// NewAPIGatewayClient, but any *apigatewaymanagementapi.Client works: the
// manager turns the SDK's retries off on every call it makes. Every
// attempt is paced by the manager's Limiter (see WithLimiter).
func NewManager(st store.ConnectionStore, client APIGatewayClient, endpoint string, opts ...Option) *Manager {
	if st == nil || client == nil {
		// A programming error, caught here rather than as a nil
		// dereference on the first Send.
		panic("connection: NewManager needs a store and a client")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.retry = cfg.retry.withDefaults()
	cfg.breaker = cfg.breaker.withDefaults()
	pace := cfg.limiter
	if !cfg.limiterSet {
		pace = NewLimiter(LimiterConfig{Rate: DefaultRate, Burst: DefaultBurst, Clock: cfg.clock})
	}
	routes, _ := st.(store.RouteGetter)
	paceReal := false
	if pace != nil {
		_, paceReal = pace.clock.(realClock)
	}
	return &Manager{
		paceRealTime: paceReal,
		store:        st,
		routes:       routes,
		clients:      newEndpointClients(client, endpoint),
		cfg:          cfg,
		backoff:      backoff.Policy{Base: cfg.retry.BaseDelay, Max: cfg.retry.MaxDelay},
		conns:        newConnStates(cfg.breaker, cfg.clock),
		life:         newLifecycle(cfg.retry.AttemptTimeout),
		pace:         pace,
	}
}

// log writes one line with the correlation ID of ctx, if the level is
// enabled (so a discarded line costs no allocation).
func (m *Manager) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !m.cfg.logger.Enabled(ctx, level) {
		return
	}
	if id := CorrelationID(ctx); id != "" {
		attrs = append(attrs, slog.String("correlation_id", id))
	}
	m.cfg.logger.LogAttrs(ctx, level, msg, attrs...)
}

// sleep waits d on the manager's clock, or until ctx ends.
func (m *Manager) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-m.cfg.clock.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryDelay is the wait before retry number retry (0 = the first).
func (m *Manager) retryDelay(retry int) time.Duration {
	return m.backoff.Delay(retry, m.cfg.randN)
}

// ctxError is the error for work stopped by ctx: it matches the context's
// error and, when the manager's Shutdown cut it short, ErrShuttingDown.
func ctxError(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// errAttemptTimedOut is the cause of a context cancelled because one
// attempt ran longer than RetryPolicy.AttemptTimeout. It never reaches a
// caller: such an attempt is classified as a network failure.
var errAttemptTimedOut = httppool.ErrDeadline

// reservePace takes the Limiter's token for an attempt starting at now (a
// reading of the real clock, handed on when the Limiter runs on real
// time too) and returns how long to wait for it; 0 means go, and so does
// a manager without pacing.
func (m *Manager) reservePace(now time.Time) time.Duration {
	if m.pace == nil {
		return 0
	}
	if !m.paceRealTime {
		now = time.Time{}
	}
	return m.pace.reserve(now)
}

// attempt waits for the pacing Limiter, makes one attempt of a Broadcast
// under ctx (the Broadcast's context, shared by its workers) and
// classifies its outcome. A bounded transport is given the attempt's
// deadline; any other runs under a child of ctx that carries the
// per-attempt timeout.
func (m *Manager) attempt(ctx context.Context, connectionID string, t transport, data []byte, hash string) (kind, error) {
	now := time.Now()
	if d := m.reservePace(now); d > 0 {
		if err := m.pace.sleep(ctx, d); err != nil {
			return kindCanceled, ctxError(ctx)
		}
		now = time.Now()
	}
	if ctx.Err() != nil {
		return kindCanceled, ctxError(ctx)
	}
	var (
		err      error
		timedOut bool
	)
	if t.bounded() {
		err = t.post(ctx, connectionID, data, hash, bounds{Deadline: now.Add(m.cfg.retry.AttemptTimeout)})
		timedOut = err != nil && errors.Is(err, errAttemptTimedOut)
	} else {
		a := m.life.startAttempt(ctx)
		err = t.post(a.ctx, connectionID, data, hash, bounds{})
		timedOut = a.end()
	}
	if err != nil && !timedOut && ctx.Err() != nil {
		return kindCanceled, ctxError(ctx)
	}
	return m.settle(connectionID, classify(err, timedOut), err)
}

// unitAttempt is attempt for a Send or an IsActive: the call runs under
// the unit's own context, which the lifecycle's watchdog cancels (cause
// errAttemptTimedOut) if the attempt outlasts its timeout, rather than
// under a second context per attempt. The unit must have derived its
// context.
func (m *Manager) unitAttempt(u *unit, connectionID string, call func(ctx context.Context) error) (kind, error) {
	if m.pace != nil {
		if err := m.pace.Wait(u.ctx); err != nil {
			return kindCanceled, ctxError(u.ctx)
		}
	}
	ctx := u.ctx
	u.startAttempt()
	err := call(ctx)
	timedOut := u.endAttempt()
	if err != nil && !timedOut && ctx.Err() != nil {
		// The caller's context ended or Shutdown stopped the manager.
		return kindCanceled, ctxError(ctx)
	}
	return m.settle(connectionID, classify(err, timedOut), err)
}

// sendAttempt is one attempt of a Send. Through a transport that bounds
// its attempts itself (a FastClient's pool) it runs under the unit's
// context as it is (the caller's, for a lazy unit), bounded by the
// attempt's deadline and the manager's halted flag, so neither the
// watchdog nor a context to cancel is needed, and one reading of the
// clock serves the Limiter and the deadline. Through any other it is a
// unitAttempt.
func (m *Manager) sendAttempt(u *unit, connectionID string, t transport, data []byte, hash string) (kind, error) {
	if !t.bounded() {
		return m.unitAttempt(u, connectionID, func(ctx context.Context) error {
			return t.post(ctx, connectionID, data, hash, bounds{})
		})
	}
	now := time.Now()
	if d := m.reservePace(now); d > 0 {
		u.derive() // something for Shutdown to cancel the wait with
		if err := m.pace.sleep(u.ctx, d); err != nil {
			return kindCanceled, ctxError(u.ctx)
		}
		now = time.Now()
	}
	if err := u.ctx.Err(); err != nil {
		return kindCanceled, ctxError(u.ctx)
	}
	b := bounds{Deadline: now.Add(m.cfg.retry.AttemptTimeout), Stop: &m.life.halted}
	err := t.post(u.ctx, connectionID, data, hash, b)
	if err == nil {
		return kindOK, nil
	}
	timedOut := errors.Is(err, errAttemptTimedOut)
	switch {
	case timedOut:
	case u.ctx.Err() != nil:
		return kindCanceled, ctxError(u.ctx)
	case u.stopped():
		return kindCanceled, errStopped
	}
	return m.settle(connectionID, classify(err, timedOut), err)
}

// settle counts an attempt's outcome; a 429 is reported to the Limiter,
// which tells account throttling from one full connection.
func (m *Manager) settle(connectionID string, k kind, err error) (kind, error) {
	if k == kindThrottled {
		m.metrics.throttled.Add(1)
		if m.pace != nil {
			m.pace.Throttled(connectionID)
		}
	}
	return k, err
}

// withRetries makes the unit's attempts until one succeeds, fails in a
// way retrying cannot fix, or the retries run out, sleeping a full-jitter
// backoff between attempts (never after the last one). It returns the
// last outcome and the number of attempts made.
func (m *Manager) withRetries(u *unit, connectionID string, attempt func() (kind, error)) (kind, int, error) {
	for n := 1; ; n++ {
		k, err := attempt()
		if !k.retryable() || n > m.cfg.retry.MaxRetries {
			return k, n, err
		}
		d := m.retryDelay(n - 1)
		m.metrics.retries.Add(1)
		m.log(u.ctx, slog.LevelDebug, "connection: retrying",
			slog.String("connection_id", connectionID), slog.String("cause", k.String()),
			slog.Int("attempt", n), slog.Duration("delay", d))
		u.derive() // something for Shutdown to cancel the sleep with
		if err := m.sleep(u.ctx, d); err != nil {
			return kindCanceled, n, ctxError(u.ctx)
		}
	}
}
