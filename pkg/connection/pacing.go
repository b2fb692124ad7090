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

// The adaptive (AIMD) part of the Limiter.
//
// A decrease needs throttling of the account, not of one connection: 429s
// for throttleDistinct distinct connections within throttleWindow (one
// connection answering 429 again and again has a full outbound buffer,
// which says nothing about the account). Only fresh 429s count: answers to
// calls let through since the rate last changed. Calls let through before
// it went out at the old rate, and their 429s are already answered by the
// decrease; a Manager tags each call with the Limiter's epoch (the number
// of decreases so far) to tell them apart. A 429 reported through the
// exported Throttled carries no epoch and counts as fresh once
// decreaseCooldown has passed since the last decrease.
//
// The decrease is measured against what the gateway admits, not against
// the configured rate: once it throttles, its bucket is empty, and the
// rate it admits is its quota. The Limiter estimates that rate two ways:
// the calls actually sent per second (never more than the current rate)
// times the share of them the gateway admitted since the last decrease,
// and, once the gateway has throttled for minRateSpan and admitted
// minRateAnswers, the admitted answers per second since then (over the
// last one to two measurePeriods). The new rate is decreaseMargin of the
// higher estimate, the share taken low, (admitted+0.5)/(answered+2), so
// that a handful of answers cannot put the rate over the quota again. A
// sender far above its quota thus comes down to it in one or two steps,
// whatever rate it started from, and one just above it by about
// decreaseMargin. A decrease waits for minShareAnswers answers to measure
// the share on. A Limiter told of no admitted answers (used only through
// Wait and Throttled) cannot measure the share and cuts by classicFactor.
//
// The rate then grows back every increaseEvery: by fastIncrease of the
// estimated quota (with the share taken central, (admitted+1)/(answered+2))
// while below fastBelow of it, then by increaseFraction, probing, up to
// the configured rate; an unlimited Limiter is unlimited again at twice
// the estimate. While it backs off its burst is only adaptiveBurstTime of
// its rate: the gateway's burst is unknown, and a saved-up burst larger
// than it would be answered with 429s.
const (
	throttleDistinct  = 3
	throttleWindow    = 500 * time.Millisecond
	decreaseCooldown  = 200 * time.Millisecond
	decreaseMargin    = 0.85
	minShareAnswers   = 8
	classicFactor     = 0.7
	increaseEvery     = 100 * time.Millisecond
	increaseFraction  = 0.01
	fastIncrease      = 0.05
	fastBelow         = 0.9
	minAdaptiveRate   = 10.0
	adaptiveBurstTime = 20 * time.Millisecond // burst while adapting: this much of the rate
	throughputWindow  = 100 * time.Millisecond
	measurePeriod     = time.Second // the admitted share and rate are measured over one to two of these
	minRateSpan       = 50 * time.Millisecond
	minRateAnswers    = 10
	maxWait           = 24 * time.Hour // longest single wait for a token
)

// LimiterConfig configures a Limiter. The zero value is unlimited but
// adaptive: no pacing until the gateway throttles, then AIMD from the
// rate the gateway admits.
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
// once, to just under the rate the gateway admits, and raised back
// additively (AIMD). One Limiter is meant to be shared by every Manager of
// a process (pass it with WithLimiter), since AWS's quota is per account
// and region, not per Manager. It is safe for concurrent use.
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
	epoch        uint64        // decreases so far; calls carry the epoch they were let through in
	down         chan struct{} // closed at the next decrease; nil until asked for
	ceiling      float64       // the quota estimated at the last decrease
	fastUntil    float64       // the rate below which it grows back fast
	lastDecrease time.Time
	lastIncrease time.Time
	marks        [markRing]throttleMark // the latest fresh 429s, a ring
	nextMark     int
	// The admitted share: admitted answers (counted off the lock) and
	// fresh 429s since measureStart, and the period before it.
	admitted     atomic.Uint64
	measured     atomic.Bool // a Manager reports its admitted answers
	measureStart time.Time
	admittedMark uint64 // admitted at measureStart
	refused      uint64 // fresh 429s since measureStart
	prevAdmitted uint64 // the period before measureStart, if after the last decrease
	prevRefused  uint64
	// The admitted rate while throttled: admitted answers since the
	// older of two marks a measurePeriod apart, from the first decrease
	// until the rate has grown back to the configured one.
	throttledNow bool
	rateMarks    [2]admittedMark
	// Throughput estimate, for the rate actually sent.
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

type admittedMark struct {
	at       time.Time
	admitted uint64
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
	l.last, l.winStart, l.measureStart = now, now, now
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
	_, err := l.wait(ctx)
	return err
}

// wait is Wait, returning the epoch the call was let through in.
func (l *Limiter) wait(ctx context.Context) (uint64, error) {
	d, epoch := l.reserve(time.Time{})
	if d > 0 {
		return epoch, l.sleep(ctx, d)
	}
	return epoch, ctx.Err()
}

// reserve takes a token and returns how long the caller must wait before
// its call may go (0 means now) and the epoch the call belongs to, which
// the caller hands back with a 429 (see throttledIn). A
// caller that gives up waiting returns the token with unreserve. at is
// the caller's fresh reading of the Limiter's clock, or zero to read it
// here. Readings from concurrent callers may reach the lock out of order;
// the bucket only ever moves forward.
func (l *Limiter) reserve(at time.Time) (time.Duration, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := at
	if now.IsZero() {
		now = l.clock.Now()
	}
	l.adjust(now)
	l.count(now)
	if l.rate == 0 {
		return 0, l.epoch
	}
	l.refill(now)
	l.tokens--
	if l.tokens >= 0 {
		return 0, l.epoch
	}
	// The token is reserved now and waited for: concurrent callers queue
	// up behind each other's reservations, so the rate holds however many
	// wait at once. Capped so that an absurdly low rate cannot overflow
	// the duration (which would turn into no wait at all); at least 1 ns,
	// since 0 means no wait.
	return max(time.Duration(min(-l.tokens/l.rate, maxWait.Seconds())*float64(time.Second)), 1), l.epoch
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
// short spell's worth of the rate while backing off: the gateway's own
// burst is unknown, and a saved-up burst larger than it would be answered
// with 429s.
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

// count keeps the throughput estimate and rolls the admitted share's
// measurement period; the caller holds mu.
func (l *Limiter) count(now time.Time) {
	if el := now.Sub(l.winStart); el >= throughputWindow {
		l.lastRate = float64(l.winCount) / el.Seconds()
		l.winStart, l.winCount = now, 0
		if now.Sub(l.measureStart) >= measurePeriod {
			a := l.admitted.Load()
			l.prevAdmitted, l.prevRefused = a-l.admittedMark, l.refused
			l.measureStart, l.admittedMark, l.refused = now, a, 0
		}
		if l.throttledNow && now.Sub(l.rateMarks[1].at) >= measurePeriod {
			l.rateMarks[0], l.rateMarks[1] = l.rateMarks[1], admittedMark{now, l.admitted.Load()}
		}
	}
	l.winCount++
}

// throughput is the recent rate of calls; the caller holds mu.
func (l *Limiter) throughput(now time.Time) float64 {
	cur := 0.0
	if el := now.Sub(l.winStart); el >= time.Millisecond {
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
	// Fast steps while below fastUntil (the last one may cross it), then
	// slow ones; counted, not looped, since a long quiet spell is many
	// steps.
	n := float64(steps)
	if l.rate < l.fastUntil {
		fast := max(1, l.ceiling*fastIncrease)
		k := min(n, math.Ceil((l.fastUntil-l.rate)/fast))
		l.rate += k * fast
		n -= k
	}
	l.rate += n * max(1, l.ceiling*increaseFraction)
	switch {
	case l.maxRate > 0 && l.rate >= l.maxRate:
		l.rate = l.maxRate
		l.throttledNow = false
	case l.maxRate == 0 && l.rate >= 2*l.ceiling:
		// Well past where it was throttled: unlimited again.
		l.rate = 0
		l.throttledNow = false
	}
}

// admittedRate is the rate the gateway admitted calls at since the older
// rate mark, if the Limiter is throttled and that rests on enough
// answers over long enough; the caller holds mu. Once the gateway
// throttles, its bucket is empty, so while the Limiter sends more than
// the quota this is the quota itself, the gateway's burst left out.
func (l *Limiter) admittedRate(now time.Time) (float64, bool) {
	if !l.throttledNow {
		return 0, false
	}
	m := l.rateMarks[0]
	span := now.Sub(m.at)
	a := l.admitted.Load() - m.admitted
	if span < minRateSpan || a < minRateAnswers {
		return 0, false
	}
	return float64(a) / span.Seconds(), true
}

// Throttled reports a 429 answer the gateway gave for connectionID. The
// Manager reports every 429 it gets itself; call this for calls made
// outside a Manager that share this Limiter's budget. When several
// distinct connections were throttled within half a second the account
// is being throttled and the rate is lowered; one connection answering
// 429 again and again (its outbound buffer is full) changes nothing.
func (l *Limiter) Throttled(connectionID string) {
	l.throttle(connectionID, 0, false)
}

// throttledIn reports a 429 to a call let through in epoch.
func (l *Limiter) throttledIn(connectionID string, epoch uint64) {
	l.throttle(connectionID, epoch, true)
}

// admittedAnswer reports an answer other than 429 or 5xx: the gateway
// admitted the call. Every successful call makes this report, so it takes
// no lock. Answers to calls sent before the last decrease count too; they
// are at most the calls in flight then.
func (l *Limiter) admittedAnswer() {
	l.admitted.Add(1)
	if !l.measured.Load() {
		l.measured.Store(true)
	}
}

// epochNow is the current epoch.
func (l *Limiter) epochNow() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// closedChan is returned for an epoch already over.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// lowered returns a channel closed once the rate has been lowered after
// epoch: a call throttled in epoch is retried at a rate the gateway has
// not yet refused.
func (l *Limiter) lowered(epoch uint64) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch {
		return closedChan
	}
	if l.down == nil {
		l.down = make(chan struct{})
	}
	return l.down
}

func (l *Limiter) throttle(connectionID string, epoch uint64, tagged bool) {
	l.throttled.Add(1)
	if !l.adaptive {
		return
	}
	h := maphash.String(l.seed, connectionID)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if tagged {
		if epoch != l.epoch {
			return // sent at a rate already lowered
		}
		l.refused++
	} else if !l.lastDecrease.IsZero() && now.Sub(l.lastDecrease) < decreaseCooldown {
		return
	}
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
	if n < throttleDistinct {
		return
	}
	measured := l.measured.Load()
	admitted := l.admitted.Load() - l.admittedMark + l.prevAdmitted
	refused := l.refused + l.prevRefused
	if measured && admitted+refused < minShareAnswers {
		return
	}
	l.decrease(now, measured, admitted, refused)
}

// decrease lowers the rate at now and starts a new epoch; the caller
// holds mu and the account is being throttled.
func (l *Limiter) decrease(now time.Time, measured bool, admitted, refused uint64) {
	l.adjust(now)
	if l.rate != 0 {
		l.refill(now)
	}
	// What was actually sent: the recent throughput, never more than the
	// current rate (the throughput window may still hold calls sent
	// before the last decrease).
	sent := l.throughput(now)
	if l.rate != 0 && (sent <= 0 || sent > l.rate) {
		sent = l.rate
	}
	sent = max(sent, minAdaptiveRate)
	if measured {
		// The admitted rate, from the share: low for the new rate (a
		// few answers must not put it over the quota again), central
		// for the estimate of the quota it grows back to fast.
		a, n := float64(admitted), float64(admitted+refused)
		low, mid := sent*(a+0.5)/(n+2), sent*(a+1)/(n+2)
		// From the admitted answers over time, once there are enough.
		if r, ok := l.admittedRate(now); ok {
			low, mid = max(low, r), max(mid, r)
		}
		l.ceiling = max(mid, minAdaptiveRate)
		l.rate = max(minAdaptiveRate, decreaseMargin*min(low, sent))
		l.fastUntil = fastBelow * l.ceiling
	} else {
		l.ceiling = sent
		l.rate = max(minAdaptiveRate, sent*classicFactor)
		l.fastUntil = 0
	}
	// The gateway says the account is over: spend nothing saved up.
	l.tokens = min(l.tokens, 0)
	if now.After(l.last) {
		l.last = now
	}
	l.lastDecrease, l.lastIncrease = now, now
	// A new epoch: the 429s remembered so far, and the share measured,
	// belong to the old rate.
	l.epoch++
	if l.down != nil {
		close(l.down)
		l.down = nil
	}
	l.marks = [markRing]throttleMark{}
	l.measureStart, l.admittedMark, l.refused = now, l.admitted.Load(), 0
	l.prevAdmitted, l.prevRefused = 0, 0
	if !l.throttledNow {
		l.throttledNow = true
		m := admittedMark{now, l.admitted.Load()}
		l.rateMarks = [2]admittedMark{m, m}
	}
	l.events.Add(1)
}
