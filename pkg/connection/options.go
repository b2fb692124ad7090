package connection

import (
	"log/slog"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how a failed attempt is retried. Only attempts the
// gateway rejected (5xx, 429) or that failed on the network are retried.
// The zero value is the default policy.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt.
	// Zero means 3 (4 attempts); a negative value means no retries.
	MaxRetries int
	// BaseDelay is the ceiling of the first retry's delay; each further
	// retry doubles it. Zero means 100 ms. A throttled attempt (429) is
	// retried earlier, as soon as the Manager's adaptive Limiter has
	// lowered its rate.
	BaseDelay time.Duration
	// MaxDelay caps every delay; it is reachable. Zero means 5 s.
	MaxDelay time.Duration
	// AttemptTimeout bounds one HTTP attempt. A timed-out attempt is
	// retried and may have been delivered. Through a FastClient's own
	// pool it is the connection's deadline, exact; through any other
	// client one watchdog per Manager enforces it, looking every
	// AttemptTimeout/8 (at least every millisecond), so an attempt is
	// given up at most that long after its timeout. Zero means 10 s.
	AttemptTimeout time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = 3
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 100 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 5 * time.Second
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = 10 * time.Second
	}
	return p
}

// BreakerSettings configure the per-connection circuit breaker. The zero
// value is the default.
type BreakerSettings struct {
	// Threshold is the number of consecutive failed Sends (retries
	// exhausted counts as one) that opens the breaker. Zero means 5; a
	// negative value disables the breaker.
	Threshold int
	// Cooldown is how long an open breaker refuses calls before it lets
	// one probe through. Zero means 30 s.
	Cooldown time.Duration
	// IdleTTL is how long a breaker that saw no call is remembered; after
	// it (and, for an open breaker, after its cooldown too) it is
	// forgotten, which keeps memory bounded by the number of recently
	// used connections. Zero means 2 minutes.
	IdleTTL time.Duration
}

func (b BreakerSettings) withDefaults() BreakerSettings {
	if b.Threshold == 0 {
		b.Threshold = 5
	}
	if b.Cooldown <= 0 {
		b.Cooldown = 30 * time.Second
	}
	if b.IdleTTL <= 0 {
		b.IdleTTL = 2 * time.Minute
	}
	return b
}

// Clock is the manager's source of time: breaker cooldowns, LastPing
// throttling, latency and retry delays all go through it. Tests inject a
// fake to drive them deterministically; the default is the real clock.
type Clock interface {
	Now() time.Time
	// After is like time.After: the channel receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// config is everything the options set.
type config struct {
	retry        RetryPolicy
	breaker      BreakerSettings
	workers      int
	logger       *slog.Logger
	clock        Clock
	randN        func(n int64) int64
	lastPingGap  time.Duration
	lastPingTime time.Duration
	limiter      *Limiter
	limiterSet   bool
}

func defaultConfig() config {
	return config{
		workers:      10,
		logger:       slog.New(slog.DiscardHandler),
		clock:        realClock{},
		randN:        rand.Int64N,
		lastPingGap:  time.Minute,
		lastPingTime: 5 * time.Second,
	}
}

// Option configures a Manager.
type Option func(*config)

// WithRetry sets the retry policy. See RetryPolicy for the defaults.
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// WithBreaker sets the circuit breaker settings. See BreakerSettings.
func WithBreaker(b BreakerSettings) Option { return func(c *config) { c.breaker = b } }

// WithBroadcastWorkers sets how many requests one Broadcast keeps in
// flight at once. Values below 1 mean the default, 10.
func WithBroadcastWorkers(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.workers = n
		}
	}
}

// WithLogger sets the logger. The default discards everything. Message
// bodies are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithClock replaces the real clock, for tests.
func WithClock(clk Clock) Option {
	return func(c *config) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// WithRand replaces the source of retry jitter, for tests. randN must
// return a value in [0, n), like math/rand/v2.Int64N, and be safe for
// concurrent use.
func WithRand(randN func(n int64) int64) Option {
	return func(c *config) {
		if randN != nil {
			c.randN = randN
		}
	}
}

// WithLimiter paces every @connections call of the manager (each attempt
// of Send, Broadcast and IsActive) through l. Give the same Limiter to
// every Manager of a process: AWS's 10,000/s quota is per account and
// region. nil turns pacing off, adaptive backoff included. Without this
// option each Manager has a Limiter of its own at DefaultRate and
// DefaultBurst, adaptive, on the manager's clock.
func WithLimiter(l *Limiter) Option {
	return func(c *config) { c.limiter, c.limiterSet = l, true }
}
