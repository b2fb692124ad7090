package connection

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// AWS allows 10,000 requests per second per account and region, with a
// burst of 5,000, shared by every API and every @connections call. The
// defaults stay below that, leaving room for the account's other callers.
const (
	// DefaultRate is the rate, in calls per second, of the Limiter a
	// Manager makes when it is given none.
	DefaultRate = 8000
	// DefaultBurst is that Limiter's burst.
	DefaultBurst = 4000
)

// The adaptive (AIMD) part of the Limiter. When the gateway answers 429
// for several distinct connections within throttleWindow, the account is
// being throttled: the rate drops to decreaseFactor of what it was, at
// most once per decreaseCooldown (the calls already in flight answer with
// the old rate's 429s). It then grows back by increaseFraction of the
// rate before the drop every increaseEvery, up to the configured rate.
// A single connection answering 429 again and again has a full outbound
// buffer; that says nothing about the account, so it never counts.
const (
	throttleDistinct  = 3
	throttleWindow    = 500 * time.Millisecond
	decreaseFactor    = 0.7
	decreaseCooldown  = 200 * time.Millisecond
	increaseEvery     = 100 * time.Millisecond
	increaseFraction  = 0.01
	minAdaptiveRate   = 10.0
	adaptiveBurstTime = 100 * time.Millisecond // burst while adapting: this much of the rate
	throughputWindow  = 100 * time.Millisecond
	maxWait           = 24 * time.Hour // longest single wait for a token
)

// LimiterConfig configures a Limiter. The zero value is unlimited but
// adaptive: no pacing until the gateway throttles, then AIMD from the
// rate that was being sent.
type LimiterConfig struct {
	// Rate is the budget in calls per second for every @connections call
	// (POST, GET, DELETE, retries included) that goes through the
	// Limiter. Zero (or negative) means unlimited.
	Rate float64
	// Burst is how many calls may go at once after a quiet spell. Zero
	// means Rate/2 (AWS's ratio), at least 1. Ignored when unlimited.
	Burst int
	// DisableAdaptive keeps the rate fixed: throttling (429) from many
	// connections at once does not lower it.
	DisableAdaptive bool
	// Clock is the source of time; nil means the real clock. Tests
	// inject a fake one.
	Clock Clock
}

// Limiter paces @connections calls: a token bucket of Rate and Burst,
// lowered multiplicatively when the gateway throttles many connections at
// once and raised back additively (AIMD). One Limiter is meant to be
// shared by every Manager of a process (pass it with WithLimiter), since
// AWS's quota is per account and region, not per Manager. It is safe for
// concurrent use.
type Limiter struct {
	mu       sync.Mutex
	clock    Clock
	maxRate  float64 // configured; 0 = unlimited
	burst    float64 // configured (for maxRate > 0)
	adaptive bool
	rate     float64 // current; 0 = unlimited
	tokens   float64
	last     time.Time // when tokens was last brought up to date
	// AIMD state.
	peak         float64 // the rate just before the last decrease
	lastDecrease time.Time
	lastIncrease time.Time
	marks        [markRing]throttleMark // the latest 429s, a ring
	nextMark     int
	// Throughput estimate, for the first decrease when unlimited.
	winStart  time.Time
	winCount  int
	lastRate  float64
	seed      maphash.Seed
	throttled atomic.Uint64
	events    atomic.Uint64
	delayed   atomic.Uint64
}

// markRing is how many recent 429s the Limiter remembers.
const markRing = 8

type throttleMark struct {
	id uint64
	at time.Time
}

// NewLimiter returns a Limiter configured by cfg.
func NewLimiter(cfg LimiterConfig) *Limiter {
	l := &Limiter{clock: cfg.Clock, adaptive: !cfg.DisableAdaptive, seed: maphash.MakeSeed()}
	if l.clock == nil {
		l.clock = realClock{}
	}
	if cfg.Rate > 0 && !math.IsInf(cfg.Rate, 1) {
		l.maxRate = cfg.Rate
		l.burst = float64(cfg.Burst)
		if cfg.Burst <= 0 {
			l.burst = max(1, math.Floor(cfg.Rate/2))
		}
		l.rate, l.tokens = l.maxRate, l.burst
	}
	now := l.clock.Now()
	l.last, l.winStart = now, now
	return l
}

// LimiterStats is a snapshot of a Limiter.
type LimiterStats struct {
	// Rate is the current rate in calls per second, below MaxRate while
	// the Limiter backs off from throttling; 0 means unlimited.
	Rate float64
	// MaxRate and Burst are the configured budget; 0 means unlimited.
	MaxRate float64
	Burst   int
	// ThrottledTotal counts the 429 answers reported to the Limiter.
	ThrottledTotal uint64
	// ThrottleEventsTotal counts the times throttling from many
	// connections at once lowered the rate.
	ThrottleEventsTotal uint64
	// DelayedTotal counts the calls that had to wait for a token.
	DelayedTotal uint64
}

// Stats returns a snapshot of the Limiter.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	l.adjust(l.clock.Now())
	s := LimiterStats{Rate: l.rate, MaxRate: l.maxRate}
	if l.maxRate > 0 {
		s.Burst = int(l.burst)
	}
	l.mu.Unlock()
	s.ThrottledTotal = l.throttled.Load()
	s.ThrottleEventsTotal = l.events.Load()
	s.DelayedTotal = l.delayed.Load()
	return s
}

// Wait blocks until the Limiter lets one call go, or ctx ends (it then
// returns ctx's error and the call must not be made).
func (l *Limiter) Wait(ctx context.Context) error {
	if d := l.reserve(time.Time{}); d > 0 {
		return l.sleep(ctx, d)
	}
	return ctx.Err()
}

// reserve takes a token and returns how long the caller must wait before
// its call may go: 0 means now. A caller that gives up waiting returns
// the token with unreserve. at is the caller's fresh reading of the
// Limiter's clock, or zero to read it here. Readings from concurrent
// callers may reach the lock out of order; the bucket only ever moves
// forward.
func (l *Limiter) reserve(at time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := at
	if now.IsZero() {
		now = l.clock.Now()
	}
	l.adjust(now)
	l.count(now)
	if l.rate == 0 {
		return 0
	}
	l.refill(now)
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	// The token is reserved now and waited for: concurrent callers queue
	// up behind each other's reservations, so the rate holds however many
	// wait at once. Capped so that an absurdly low rate cannot overflow
	// the duration (which would turn into no wait at all); at least 1 ns,
	// since 0 means no wait.
	return max(time.Duration(min(-l.tokens/l.rate, maxWait.Seconds())*float64(time.Second)), 1)
}

// sleep waits d for a reserved token, or until ctx ends; it then gives
// the token back and returns ctx's error.
func (l *Limiter) sleep(ctx context.Context, d time.Duration) error {
	l.delayed.Add(1)
	select {
	case <-l.clock.After(d):
		return nil
	case <-ctx.Done():
		l.unreserve()
		return ctx.Err()
	}
}

// unreserve gives back a token reserve took.
func (l *Limiter) unreserve() {
	l.mu.Lock()
	l.tokens++
	l.mu.Unlock()
}

// refill brings the bucket up to now; the caller holds mu and rate > 0.
func (l *Limiter) refill(now time.Time) {
	if dt := now.Sub(l.last).Seconds(); dt > 0 {
		l.tokens += dt * l.rate
		l.last = now
	}
	if b := l.currentBurst(); l.tokens > b {
		l.tokens = b
	}
}

// currentBurst is the configured burst at the configured rate, and only a
// short spell's worth of the rate while backing off.
func (l *Limiter) currentBurst() float64 {
	if l.maxRate > 0 && l.rate >= l.maxRate {
		return l.burst
	}
	b := max(1, l.rate*adaptiveBurstTime.Seconds())
	if l.maxRate > 0 {
		b = min(b, l.burst)
	}
	return b
}

// count keeps the throughput estimate; the caller holds mu.
func (l *Limiter) count(now time.Time) {
	if el := now.Sub(l.winStart); el >= throughputWindow {
		l.lastRate = float64(l.winCount) / el.Seconds()
		l.winStart, l.winCount = now, 0
	}
	l.winCount++
}

// throughput is the recent rate of calls; the caller holds mu.
func (l *Limiter) throughput(now time.Time) float64 {
	cur := 0.0
	if el := now.Sub(l.winStart); el >= 10*time.Millisecond {
		cur = float64(l.winCount) / el.Seconds()
	}
	return max(l.lastRate, cur)
}

// adjust applies the additive increase due by now; the caller holds mu.
func (l *Limiter) adjust(now time.Time) {
	if l.rate == 0 || (l.maxRate > 0 && l.rate >= l.maxRate) {
		return
	}
	steps := int(now.Sub(l.lastIncrease) / increaseEvery)
	if steps <= 0 {
		return
	}
	l.refill(now) // tokens earned so far at the old rate
	l.lastIncrease = l.lastIncrease.Add(time.Duration(steps) * increaseEvery)
	l.rate += float64(steps) * max(1, l.peak*increaseFraction)
	switch {
	case l.maxRate > 0 && l.rate >= l.maxRate:
		l.rate = l.maxRate
	case l.maxRate == 0 && l.rate >= 2*l.peak:
		// Well past where it was throttled: unlimited again.
		l.rate = 0
	}
}

// Throttled reports a 429 answer the gateway gave for connectionID. The
// Manager calls it for every 429 it gets; call it yourself for calls made
// outside a Manager that share this Limiter's budget. When several
// distinct connections were throttled within half a second the account
// is being throttled and the rate is lowered; one connection answering
// 429 again and again (its outbound buffer is full) changes nothing.
func (l *Limiter) Throttled(connectionID string) {
	l.throttled.Add(1)
	if !l.adaptive {
		return
	}
	h := maphash.String(l.seed, connectionID)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.marks[l.nextMark] = throttleMark{id: h, at: now}
	l.nextMark = (l.nextMark + 1) % len(l.marks)
	var distinct [markRing]uint64
	n := 0
	for _, m := range l.marks {
		if m.at.IsZero() || now.Sub(m.at) > throttleWindow {
			continue
		}
		seen := false
		for _, d := range distinct[:n] {
			if d == m.id {
				seen = true
				break
			}
		}
		if !seen {
			distinct[n] = m.id
			n++
		}
	}
	if n < throttleDistinct || (!l.lastDecrease.IsZero() && now.Sub(l.lastDecrease) < decreaseCooldown) {
		return
	}
	l.adjust(now)
	cur := l.rate
	if cur == 0 {
		cur = l.throughput(now)
	} else {
		l.refill(now)
	}
	l.peak = max(cur, minAdaptiveRate)
	l.rate = max(minAdaptiveRate, cur*decreaseFactor)
	// The gateway says the account is over: spend nothing saved up.
	l.tokens = min(l.tokens, 0)
	if now.After(l.last) {
		l.last = now
	}
	l.lastDecrease, l.lastIncrease = now, now
	l.events.Add(1)
}
