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

// sleepOr waits d on the manager's clock, or until early is closed (a
// nil channel never is), or until ctx ends.
func (m *Manager) sleepOr(ctx context.Context, d time.Duration, early <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-early:
		return ctx.Err()
	default:
	}
	select {
	case <-m.cfg.clock.After(d):
		return nil
	case <-early:
		return ctx.Err()
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
// time too) and returns how long to wait for it (0 means go, and so does
// a manager without pacing) and the Limiter's epoch the attempt belongs
// to.
func (m *Manager) reservePace(now time.Time) (time.Duration, uint64) {
	if m.pace == nil {
		return 0, 0
	}
	if !m.paceRealTime {
		now = time.Time{}
	}
	return m.pace.reserve(now)
}

// attempt waits for the pacing Limiter, makes one attempt of a Broadcast
// under ctx (the Broadcast's context, shared by its workers) and
// classifies its outcome; it also returns the Limiter's epoch the
// attempt went out in. A bounded transport is given the attempt's
// deadline; any other runs under a child of ctx that carries the
// per-attempt timeout.
func (m *Manager) attempt(ctx context.Context, connectionID string, t transport, data []byte, hash string) (kind, uint64, error) {
	now := time.Now()
	d, epoch := m.reservePace(now)
	if d > 0 {
		if err := m.pace.sleep(ctx, d); err != nil {
			return kindCanceled, epoch, ctxError(ctx)
		}
		now = time.Now()
	}
	if ctx.Err() != nil {
		return kindCanceled, epoch, ctxError(ctx)
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
		return kindCanceled, epoch, ctxError(ctx)
	}
	k, err := m.settle(connectionID, classify(err, timedOut), err, epoch)
	return k, epoch, err
}

// unitAttempt is attempt for a Send or an IsActive: the call runs under
// the unit's own context, which the lifecycle's watchdog cancels (cause
// errAttemptTimedOut) if the attempt outlasts its timeout, rather than
// under a second context per attempt. The unit must have derived its
// context.
func (m *Manager) unitAttempt(u *unit, connectionID string, call func(ctx context.Context) error) (kind, uint64, error) {
	var epoch uint64
	if m.pace != nil {
		var err error
		if epoch, err = m.pace.wait(u.ctx); err != nil {
			return kindCanceled, epoch, ctxError(u.ctx)
		}
	}
	ctx := u.ctx
	u.startAttempt()
	err := call(ctx)
	timedOut := u.endAttempt()
	if err != nil && !timedOut && ctx.Err() != nil {
		// The caller's context ended or Shutdown stopped the manager.
		return kindCanceled, epoch, ctxError(ctx)
	}
	k, err := m.settle(connectionID, classify(err, timedOut), err, epoch)
	return k, epoch, err
}

// sendAttempt is one attempt of a Send. Through a transport that bounds
// its attempts itself (a FastClient's pool) it runs under the unit's
// context as it is (the caller's, for a lazy unit), bounded by the
// attempt's deadline and the manager's halted flag, so neither the
// watchdog nor a context to cancel is needed, and one reading of the
// clock serves the Limiter and the deadline. Through any other it is a
// unitAttempt.
func (m *Manager) sendAttempt(u *unit, connectionID string, t transport, data []byte, hash string) (kind, uint64, error) {
	if !t.bounded() {
		return m.unitAttempt(u, connectionID, func(ctx context.Context) error {
			return t.post(ctx, connectionID, data, hash, bounds{})
		})
	}
	now := time.Now()
	d, epoch := m.reservePace(now)
	if d > 0 {
		u.derive() // something for Shutdown to cancel the wait with
		if err := m.pace.sleep(u.ctx, d); err != nil {
			return kindCanceled, epoch, ctxError(u.ctx)
		}
		now = time.Now()
	}
	if err := u.ctx.Err(); err != nil {
		return kindCanceled, epoch, ctxError(u.ctx)
	}
	b := bounds{Deadline: now.Add(m.cfg.retry.AttemptTimeout), Stop: &m.life.halted}
	err := t.post(u.ctx, connectionID, data, hash, b)
	if err == nil {
		if m.pace != nil {
			m.pace.admittedAnswer()
		}
		return kindOK, epoch, nil
	}
	timedOut := errors.Is(err, errAttemptTimedOut)
	switch {
	case timedOut:
	case u.ctx.Err() != nil:
		return kindCanceled, epoch, ctxError(u.ctx)
	case u.stopped():
		return kindCanceled, epoch, errStopped
	}
	k, err := m.settle(connectionID, classify(err, timedOut), err, epoch)
	return k, epoch, err
}

// settle counts an attempt's outcome (epoch is the Limiter's when the
// attempt went out). A 429 is reported to the Limiter, which tells
// account throttling from one full connection; so is any other answer of
// the gateway but a 5xx, the calls it admitted, against which the Limiter
// measures how far over the quota it is.
func (m *Manager) settle(connectionID string, k kind, err error, epoch uint64) (kind, error) {
	switch k {
	case kindThrottled:
		m.metrics.throttled.Add(1)
		if m.pace != nil {
			m.pace.throttledIn(connectionID, epoch)
		}
	case kindOK, kindGone, kindPayloadTooLarge, kindForbidden, kindClientError:
		if m.pace != nil {
			m.pace.admittedAnswer()
		}
	}
	return k, err
}

// paceRetry reports whether a throttled attempt's retry waits for the
// Limiter to lower its rate rather than for a backoff: it does when the
// Limiter adapts.
func (m *Manager) paceRetry(k kind) bool {
	return k == kindThrottled && m.pace != nil && m.pace.adaptive
}

// withRetries makes the unit's attempts until one succeeds, fails in a
// way retrying cannot fix, or the retries run out, sleeping a full-jitter
// backoff between attempts (never after the last one). A throttled
// attempt's retry goes as soon as the adaptive Limiter has lowered its
// rate since the attempt went out (it then waits for a token at the new
// rate), and after the backoff at the latest: one connection alone
// answering 429 lowers nothing. It returns the last outcome and the
// number of attempts made.
func (m *Manager) withRetries(u *unit, connectionID string, attempt func() (kind, uint64, error)) (kind, int, error) {
	for n := 1; ; n++ {
		k, epoch, err := attempt()
		if !k.retryable() || n > m.cfg.retry.MaxRetries {
			return k, n, err
		}
		d := m.retryDelay(n - 1)
		m.metrics.retries.Add(1)
		m.log(u.ctx, slog.LevelDebug, "connection: retrying",
			slog.String("connection_id", connectionID), slog.String("cause", k.String()),
			slog.Int("attempt", n), slog.Duration("delay", d))
		u.derive() // something for Shutdown to cancel the sleep with
		var lowered <-chan struct{}
		if m.paceRetry(k) {
			lowered = m.pace.lowered(epoch)
		}
		if err := m.sleepOr(u.ctx, d, lowered); err != nil {
			return kindCanceled, n, ctxError(u.ctx)
		}
	}
}
