package connection

import (
	"container/heap"
	"fmt"
	"math"
	"testing"
	"time"
)

// gatewayBucket is a gateway's request quota: a token bucket answering
// 429 when empty, on the simulation's time.
type gatewayBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *gatewayBucket) take(now time.Time) bool {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(b.burst, b.tokens+d*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// simEvent is a worker ready to take its next token, or the answer to
// one of its calls.
type simEvent struct {
	at       time.Time
	worker   int
	answer   bool
	admitted bool
	epoch    uint64
	conn     int
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	if q[i].answer != q[j].answer {
		return q[i].answer // answers first at a tie
	}
	return q[i].worker < q[j].worker
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// simResult is what a simulation saw, by 100 ms window.
type simResult struct {
	windows    []simWindow
	belowQuota time.Duration // when the rate first fell to the quota (+5 %); -1 never
	decreases  []string      // when each decrease came and to what rate
}

type simWindow struct {
	calls, throttled int
	maxRate          float64 // the Limiter's highest rate seen in the window; +Inf unlimited
}

// simulate runs workers senders through l for span against a gateway
// with quota and burst, every call answered rtt after it went out, and
// reports to l as a Manager does. The senders go as fast as the Limiter
// lets them, one call each in flight at a time, round-robin over conns
// connections. Everything runs on clock (the Limiter's), deterministically.
func simulate(l *Limiter, clock *stepClock, workers, conns int, quota float64, burst int, rtt, span time.Duration) simResult {
	start := clock.now
	gw := &gatewayBucket{rate: quota, burst: float64(burst), tokens: float64(burst), last: start}
	q := &simQueue{}
	for w := range workers {
		heap.Push(q, simEvent{at: start, worker: w})
	}
	res := simResult{belowQuota: -1}
	next := 0
	for q.Len() > 0 {
		e := heap.Pop(q).(simEvent)
		if e.at.Sub(start) >= span {
			break
		}
		clock.now = e.at
		w := int(e.at.Sub(start) / (100 * time.Millisecond))
		for len(res.windows) <= w {
			res.windows = append(res.windows, simWindow{})
		}
		if e.answer {
			if e.admitted {
				l.admittedAnswer()
			} else {
				res.windows[w].throttled++
				l.throttledIn(fmt.Sprint("conn-", e.conn), e.epoch)
			}
			heap.Push(q, simEvent{at: e.at, worker: e.worker})
		} else {
			d, epoch := l.reserve(e.at)
			at := e.at.Add(d)
			clock.now = at
			wi := int(at.Sub(start) / (100 * time.Millisecond))
			for len(res.windows) <= wi {
				res.windows = append(res.windows, simWindow{})
			}
			res.windows[wi].calls++
			heap.Push(q, simEvent{at: at.Add(rtt), worker: e.worker, answer: true, admitted: gw.take(at), epoch: epoch, conn: next % conns})
			next++
		}
		st := l.Stats()
		r := st.Rate
		if int(st.ThrottleEventsTotal) > len(res.decreases) {
			res.decreases = append(res.decreases, fmt.Sprintf("%v:%.0f", clock.now.Sub(start).Round(100*time.Microsecond), r))
		}
		if res.belowQuota < 0 && r > 0 && r <= 1.05*quota {
			res.belowQuota = clock.now.Sub(start)
		}
		if r == 0 {
			r = math.Inf(1)
		}
		res.windows[w].maxRate = max(res.windows[w].maxRate, r)
	}
	return res
}

// share is the 429 share of the calls sent in windows [from, to).
func (r simResult) share(from, to int) (calls int, throttled float64) {
	t := 0
	for _, w := range r.windows[from:min(to, len(r.windows))] {
		calls += w.calls
		t += w.throttled
	}
	if calls == 0 {
		return 0, 0
	}
	return calls, float64(t) / float64(calls)
}

// A sender far above a steady quota comes down to just under it within a
// few round trips and stays there: AIMD measured against the rate the
// gateway admits, not the configured ceiling.
func TestLimiterConvergesToTheQuota(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cfg             LimiterConfig
		workers         int
		quota           float64
		burst           int
		rtt             time.Duration
		within          time.Duration
		maxEarlyCalls   int // calls in the first 100 ms
		settledFraction float64
		maxOver         float64 // how far over the quota the rate may probe once settled
	}{
		// TestBroadcastThrottled's case: the default Limiter, a quota
		// of 200/s with a burst of 10, a sender 100 times faster.
		{"default-vs-200", LimiterConfig{Rate: DefaultRate, Burst: DefaultBurst}, 10, 200, 10, 500 * time.Microsecond, 10 * time.Millisecond, 60, 0.85, 1.15},
		// BenchmarkPacing's unlimited case.
		{"unlimited-vs-2000", LimiterConfig{}, 32, 2000, 500, 200 * time.Microsecond, 150 * time.Millisecond, 0, 0.85, 1.15},
		// A slow gateway and a sender 28 % over the quota: in-flight
		// calls answer 429 long after the decrease they caused, and the
		// 429s come slowly, the gateway's burst spent only after 0.5 s.
		{"unlimited-vs-1000-rtt-50ms", LimiterConfig{}, 64, 1000, 100, 50 * time.Millisecond, 700 * time.Millisecond, 0, 0.85, 1.15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &stepClock{now: time.Unix(1e9, 0)}
			tc.cfg.Clock = clock
			l := NewLimiter(tc.cfg)
			r := simulate(l, clock, tc.workers, 1000, tc.quota, tc.burst, tc.rtt, 10*time.Second)
			if r.belowQuota < 0 || r.belowQuota > tc.within {
				t.Errorf("rate down to the quota after %v, want within %v", r.belowQuota, tc.within)
			}
			if tc.maxEarlyCalls > 0 {
				if calls, _ := r.share(0, 1); calls > tc.maxEarlyCalls {
					t.Errorf("%d calls in the first 100 ms, want at most %d", calls, tc.maxEarlyCalls)
				}
			}
			// Settled (from 1 s on): few 429s, and the gateway admits
			// close to its quota.
			calls, throttled := r.share(10, 100)
			if throttled > 0.03 {
				t.Errorf("429 share from 1 s on %.2f %%, want at most 3 %%", 100*throttled)
			}
			admitted := float64(calls) * (1 - throttled) / 9
			if limit := tc.quota + float64(tc.burst)/9; admitted < tc.settledFraction*tc.quota || admitted > limit {
				t.Errorf("admitted %.0f/s from 1 s on, want %.0f–%.0f", admitted, tc.settledFraction*tc.quota, limit)
			}
			// The gateway's burst lets the rate probe above the quota
			// unanswered until the burst is spent.
			for i, w := range r.windows[10:] {
				if w.maxRate > tc.maxOver*tc.quota {
					t.Errorf("window %d: rate up to %.0f, want at most %.0f", 10+i, w.maxRate, tc.maxOver*tc.quota)
					break
				}
			}
			s := l.Stats()
			t.Logf("decreases (time:rate): %v", r.decreases)
			t.Logf("down to the quota after %v; from 1 s on %.0f calls/s admitted, %.2f %% 429; %d decreases; final rate %.0f",
				r.belowQuota, admitted, 100*throttled, s.ThrottleEventsTotal, s.Rate)
		})
	}
}

// Under the quota nothing changes: no 429, no decrease, the configured
// rate and burst.
func TestLimiterUnderTheQuotaKeepsItsRate(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	l := NewLimiter(LimiterConfig{Rate: DefaultRate, Burst: DefaultBurst, Clock: clock})
	r := simulate(l, clock, 64, 1000, 10000, 5000, time.Millisecond, 3*time.Second)
	if calls, throttled := r.share(0, 30); throttled != 0 || calls < 3*DefaultRate {
		t.Errorf("%d calls, %.2f %% 429", calls, 100*throttled)
	}
	if s := l.Stats(); s.Rate != DefaultRate || s.ThrottleEventsTotal != 0 {
		t.Errorf("stats %+v", s)
	}
}

// The decrease: the rate actually sent times the admitted share, with a
// margin; 429s to calls sent before it are not counted again.
func TestLimiterDecreaseMeasuresTheAdmittedRate(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	l := NewLimiter(LimiterConfig{Rate: 1000, Burst: 100, Clock: clock})
	// 500 calls a second for 200 ms: below the 1,000/s budget.
	var epoch uint64
	for range 100 {
		_, epoch = l.reserve(clock.now)
		clock.now = clock.now.Add(2 * time.Millisecond)
	}
	// 20 answers: 16 admitted, 4 throttled from 4 connections.
	for range 16 {
		l.admittedAnswer()
	}
	for i := range 3 {
		l.throttledIn(fmt.Sprint("c", i), epoch)
	}
	s := l.Stats()
	// The rate sent, 500/s, not the budget, times the admitted share
	// estimated low: (16+0.5)/(19+2).
	want := decreaseMargin * 500 * 16.5 / 21
	if s.ThrottleEventsTotal != 1 || s.Rate < want-1 || s.Rate > want+1 {
		t.Fatalf("after the decrease: %+v, want rate %.1f", s, want)
	}
	ch := l.lowered(epoch)
	select {
	case <-ch:
	default:
		t.Error("lowered(old epoch) is not closed")
	}
	cur := l.epochNow()
	if cur != epoch+1 {
		t.Fatalf("epoch %d, want %d", cur, epoch+1)
	}
	next := l.lowered(cur)
	// 429s to calls sent before the decrease count no more.
	for i := range 6 {
		l.throttledIn(fmt.Sprint("old", i), epoch)
	}
	if s := l.Stats(); s.ThrottleEventsTotal != 1 {
		t.Errorf("stale 429s lowered the rate again: %+v", s)
	}
	select {
	case <-next:
		t.Error("lowered(current epoch) closed without a decrease")
	default:
	}
	// Fresh ones do, once enough answers came back to measure a share.
	for i := range 3 {
		l.throttledIn(fmt.Sprint("new", i), cur)
	}
	if s := l.Stats(); s.ThrottleEventsTotal != 1 {
		t.Errorf("3 answers were enough to lower the rate: %+v", s)
	}
	for range 5 {
		l.admittedAnswer()
	}
	l.throttledIn("new0", cur)
	if s := l.Stats(); s.ThrottleEventsTotal != 2 {
		t.Errorf("fresh 429s from 3 connections among 9 answers did not lower the rate: %+v", s)
	}
	select {
	case <-next:
	default:
		t.Error("lowered(previous epoch) is not closed after the decrease")
	}
}

// After a decrease the rate grows back fast to near the estimated quota,
// then slowly, up to the budget.
func TestLimiterIncrease(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	l := NewLimiter(LimiterConfig{Rate: 1000, Burst: 100, Clock: clock})
	var epoch uint64
	for range 100 {
		_, epoch = l.reserve(clock.now)
		clock.now = clock.now.Add(time.Millisecond)
	}
	// 1,000/s sent, 48 of 51 admitted: the quota estimated at
	// 1000*(48+1)/(51+2), the new rate from the low estimate
	// 1000*(48+0.5)/(51+2).
	for range 48 {
		l.admittedAnswer()
	}
	for i := range 3 {
		l.throttledIn(fmt.Sprint("c", i), epoch)
	}
	ceiling := 1000.0 * 49 / 53
	r0 := l.Stats().Rate
	if want := decreaseMargin * 1000 * 48.5 / 53; r0 < want-0.01 || r0 > want+0.01 {
		t.Fatalf("rate %v, want %v", r0, want)
	}
	clock.now = clock.now.Add(100 * time.Millisecond)
	if r := l.Stats().Rate; r-r0 < fastIncrease*ceiling-0.01 || r-r0 > fastIncrease*ceiling+0.01 {
		t.Errorf("after one step +%v, want +%v (fast)", r-r0, fastIncrease*ceiling)
	}
	clock.now = clock.now.Add(100 * time.Millisecond)
	r2 := l.Stats().Rate
	clock.now = clock.now.Add(100 * time.Millisecond)
	if r := l.Stats().Rate; r-r2 < increaseFraction*ceiling-0.01 || r-r2 > increaseFraction*ceiling+0.01 {
		t.Errorf("above %v of the estimate +%v a step, want +%v (slow)", fastBelow, r-r2, increaseFraction*ceiling)
	}
	clock.now = clock.now.Add(time.Minute)
	if r := l.Stats().Rate; r != 1000 {
		t.Errorf("a minute later %v, want the budget", r)
	}

	// A huge budget after a long quiet spell: billions of steps, counted
	// at once.
	huge := NewLimiter(LimiterConfig{Rate: 1e15, Clock: clock})
	for i := range 3 {
		huge.Throttled(fmt.Sprint("c", i))
	}
	if r := huge.Stats().Rate; r >= 1e15 {
		t.Fatalf("not lowered: %v", r)
	}
	clock.now = clock.now.Add(1e6 * time.Hour)
	if r := huge.Stats().Rate; r != 1e15 {
		t.Errorf("after a million hours %v, want the budget", r)
	}
}
