package connection_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
)

// The Limiter on a fake clock that moves only when it waits: the time
// the clock moved is exactly the pacing the Limiter imposed.
func TestLimiterHoldsRateAndBurst(t *testing.T) {
	clock := newAutoClock()
	l := connection.NewLimiter(connection.LimiterConfig{Rate: 100, Burst: 10, Clock: clock})
	start := clock.Now()
	ctx := context.Background()
	for range 10 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := clock.Now().Sub(start); d != 0 {
		t.Errorf("the burst of 10 waited %v, want 0", d)
	}
	for range 100 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 100 more at 100/s: one second.
	if d := clock.Now().Sub(start); d < 990*time.Millisecond || d > 1010*time.Millisecond {
		t.Errorf("110 calls at 100/s with a burst of 10 took %v, want 1 s", d)
	}
	s := l.Stats()
	if s.Rate != 100 || s.MaxRate != 100 || s.Burst != 10 || s.DelayedTotal != 100 {
		t.Errorf("stats = %+v", s)
	}
}

func TestLimiterDefaultsAndUnlimited(t *testing.T) {
	if s := connection.NewLimiter(connection.LimiterConfig{Rate: 300}).Stats(); s.Burst != 150 {
		t.Errorf("burst for rate 300 = %d, want 150 (half the rate)", s.Burst)
	}
	clock := newManualClock() // a wait would block forever
	l := connection.NewLimiter(connection.LimiterConfig{Clock: clock})
	for range 100000 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if s := l.Stats(); s.Rate != 0 || s.MaxRate != 0 || s.DelayedTotal != 0 {
		t.Errorf("unlimited: %+v", s)
	}
}

func TestLimiterWaitEndsWithItsContext(t *testing.T) {
	clock := newManualClock()
	l := connection.NewLimiter(connection.LimiterConfig{Rate: 1, Burst: 1, Clock: clock})
	_ = l.Wait(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Wait(ctx) }()
	<-clock.after // the second call waits for its token
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
}

// AIMD: 429s from several connections at once cut the rate by 30 %, at
// most once per 200 ms; it then grows back by 1 % of the old rate every
// 100 ms, up to the budget. One connection answering 429 alone changes
// nothing.
func TestLimiterAIMD(t *testing.T) {
	clock := newManualClock()
	l := connection.NewLimiter(connection.LimiterConfig{Rate: 1000, Burst: 100, Clock: clock})
	for range 20 {
		l.Throttled("full-buffer")
	}
	if s := l.Stats(); s.Rate != 1000 || s.ThrottleEventsTotal != 0 || s.ThrottledTotal != 20 {
		t.Fatalf("after one connection's 429s: %+v", s)
	}
	l.Throttled("a")
	l.Throttled("b")
	if s := l.Stats(); s.Rate != 700 || s.ThrottleEventsTotal != 1 {
		t.Fatalf("after 429s from 3 connections: %+v, want rate 700", s)
	}
	// Within the cooldown, more 429s (answers to calls sent at the old
	// rate) do not cut again.
	l.Throttled("c")
	l.Throttled("d")
	l.Throttled("e")
	if s := l.Stats(); s.Rate != 700 || s.ThrottleEventsTotal != 1 {
		t.Fatalf("within the cooldown: %+v", s)
	}
	clock.Advance(time.Second) // 10 steps of 10/s
	if s := l.Stats(); math.Abs(s.Rate-800) > 1e-9 {
		t.Fatalf("a second later: rate %v, want 800", s.Rate)
	}
	clock.Advance(10 * time.Second)
	if s := l.Stats(); s.Rate != 1000 {
		t.Fatalf("recovered to %v, want the budget 1000", s.Rate)
	}
	// 429s spread over more than the half-second window are not "at once".
	for _, id := range []string{"x", "y", "z"} {
		l.Throttled(id)
		clock.Advance(300 * time.Millisecond)
	}
	if s := l.Stats(); s.ThrottleEventsTotal != 1 || s.Rate != 1000 {
		t.Errorf("three 429s 300 ms apart: %+v, want no cut", s)
	}
}

func TestLimiterDisableAdaptive(t *testing.T) {
	l := connection.NewLimiter(connection.LimiterConfig{Rate: 1000, DisableAdaptive: true, Clock: newManualClock()})
	for _, id := range []string{"a", "b", "c", "d"} {
		l.Throttled(id)
	}
	if s := l.Stats(); s.Rate != 1000 || s.ThrottleEventsTotal != 0 || s.ThrottledTotal != 4 {
		t.Errorf("stats = %+v", s)
	}
}

// Unlimited and adaptive: the first throttling sets the rate from what
// was being sent.
func TestLimiterUnlimitedAdaptsFromThroughput(t *testing.T) {
	clock := newManualClock()
	l := connection.NewLimiter(connection.LimiterConfig{Clock: clock})
	ctx := context.Background()
	// 1,000 calls in each of three 100 ms windows: 10,000/s.
	for range 3 {
		for range 1000 {
			_ = l.Wait(ctx)
		}
		clock.Advance(100 * time.Millisecond)
	}
	for _, id := range []string{"a", "b", "c"} {
		l.Throttled(id)
	}
	if s := l.Stats(); math.Abs(s.Rate-7000) > 1 || s.MaxRate != 0 || s.ThrottleEventsTotal != 1 {
		t.Fatalf("stats = %+v, want rate 7000", s)
	}
	// Far past where it was throttled, it is unlimited again.
	clock.Advance(time.Minute)
	if s := l.Stats(); s.Rate != 0 {
		t.Errorf("a minute later rate = %v, want 0 (unlimited)", s.Rate)
	}
}

// One connection whose buffer is full answers 429 to every attempt: its
// breaker opens, the pacing rate is left alone, and everyone else is
// delivered at full speed.
func TestPacingOneFullConnectionLeavesTheRateAlone(t *testing.T) {
	f := newFixture(t, connection.WithBreaker(connection.BreakerSettings{Threshold: 2}))
	f.connect(t, "full", "ok1", "ok2")
	f.srv.Script("full", 429, 429, 429, 429, 429, 429, 429, 429, 429, 429)
	ctx := context.Background()
	for range 2 {
		if err := f.m.Send(ctx, "full", "m"); err == nil {
			t.Fatal("Send to the full connection succeeded")
		}
	}
	if err := f.m.Send(ctx, "full", "m"); !errors.Is(err, connection.ErrCircuitOpen) {
		t.Errorf("third Send = %v, want ErrCircuitOpen", err)
	}
	if err := f.m.Broadcast(ctx, []string{"ok1", "ok2"}, "m"); err != nil {
		t.Errorf("Broadcast: %v", err)
	}
	s := f.m.Stats()
	if s.ThrottledTotal != 8 || s.Pacing.ThrottledTotal != 8 || s.Pacing.ThrottleEventsTotal != 0 ||
		s.Pacing.Rate != connection.DefaultRate || s.Pacing.MaxRate != connection.DefaultRate || s.Pacing.Burst != connection.DefaultBurst {
		t.Errorf("stats: throttled %d, pacing %+v", s.ThrottledTotal, s.Pacing)
	}
}

// Throttling of many connections at once lowers the rate, and the
// metrics say so in Stats, GetMetrics and the Prometheus collector.
func TestPacingThrottleEventsInMetrics(t *testing.T) {
	// Retry delays of 1 ns on the auto clock: the eight 429s fall well
	// within one throttle window, whatever the order. The Limiter lowers
	// its rate once it has eight answers to measure the admitted share
	// on; the retries, sent at the lowered rate, are all admitted.
	f := newFixture(t, connection.WithRand(func(int64) int64 { return 1 }))
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	f.connect(t, ids...)
	for _, id := range ids {
		f.srv.Script(id, 429)
	}
	if err := f.m.Broadcast(context.Background(), ids, "m"); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	for _, id := range ids {
		if n := len(f.srv.Received(id)); n != 1 {
			t.Errorf("%s received %d", id, n)
		}
	}
	s := f.m.Stats()
	if s.ThrottledTotal != 8 || s.Pacing.ThrottleEventsTotal != 1 || s.Pacing.Rate >= connection.DefaultRate {
		t.Errorf("stats: throttled %d, pacing %+v", s.ThrottledTotal, s.Pacing)
	}
	g := f.m.GetMetrics()
	if g["throttled_total"] != uint64(8) || g["throttle_events_total"] != uint64(1) || g["pacing_rate"] != s.Pacing.Rate ||
		g["pacing_max_rate"] != float64(connection.DefaultRate) || g["pacing_burst"] != connection.DefaultBurst {
		t.Errorf("GetMetrics = %v", g)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(f.m.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if m := mf.GetMetric(); len(m) == 1 {
			switch {
			case m[0].GetCounter() != nil:
				got[mf.GetName()] = m[0].GetCounter().GetValue()
			case m[0].GetGauge() != nil:
				got[mf.GetName()] = m[0].GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"streamer_connection_throttled_total":       8,
		"streamer_connection_throttle_events_total": 1,
		"streamer_connection_pacing_rate":           s.Pacing.Rate,
		"streamer_connection_pacing_max_rate":       connection.DefaultRate,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if _, ok := got["streamer_connection_paced_delayed_total"]; !ok {
		t.Error("no streamer_connection_paced_delayed_total")
	}
}

// Two managers given one Limiter draw from one bucket.
func TestPacingLimiterSharedByManagers(t *testing.T) {
	clock := newAutoClock()
	shared := connection.NewLimiter(connection.LimiterConfig{Rate: 10, Burst: 5, Clock: clock})
	a := newFixture(t, connection.WithLimiter(shared))
	b := newFixture(t, connection.WithLimiter(shared))
	a.connect(t, "c")
	b.connect(t, "c")
	ctx := context.Background()
	for range 5 {
		if err := a.m.Send(ctx, "c", "m"); err != nil {
			t.Fatal(err)
		}
	}
	if s := shared.Stats(); s.DelayedTotal != 0 {
		t.Fatalf("the burst waited: %+v", s)
	}
	for range 3 {
		if err := b.m.Send(ctx, "c", "m"); err != nil {
			t.Fatal(err)
		}
	}
	if s := b.m.Stats().Pacing; s.DelayedTotal != 3 {
		t.Errorf("b's calls after a spent the burst: delayed %d, want 3", s.DelayedTotal)
	}
	if a.m.Stats().Pacing != b.m.Stats().Pacing {
		t.Errorf("the managers report different pacing: %+v vs %+v", a.m.Stats().Pacing, b.m.Stats().Pacing)
	}
}

// Against a server with an account quota and 10 % random 5xx on top, an
// adaptive Broadcast over the real wire delivers every ID exactly once:
// nothing lost, nothing duplicated; the Limiter saw the throttling and
// lowered its rate. (The timing figures are benchmarks:
// BenchmarkPacing.) The Limiter comes down from what the lean client sends
// unpaced (tens of thousands of calls a second on a quiet machine) to the
// quota within a few round trips, and a throttled retry waits for it, so
// the retries need not span long: seven attempts (for the random 5xx)
// with backoffs of at most 20 ms.
func TestPacingBroadcastUnderQuotaAndServerErrorsDeliversOnce(t *testing.T) {
	const n = 3000
	lim := connection.NewLimiter(connection.LimiterConfig{})
	f := newFixture(t, connection.WithClock(realClock{}), connection.WithLimiter(lim), connection.WithBroadcastWorkers(16),
		connection.WithRetry(connection.RetryPolicy{MaxRetries: 6, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond}))
	f.srv.SetRateLimit(4000, 200)
	f.srv.FailRandomly(0.10)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("paced-%05d=", i)
		if err := f.store.Save(context.Background(), &store.Connection{ConnectionID: ids[i], UserID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.m.Broadcast(context.Background(), ids, "m"); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	received := f.srv.ReceivedBy()
	for _, id := range ids {
		if received[id] != 1 {
			t.Errorf("%s received %d times", id, received[id])
		}
	}
	if len(received) != n {
		t.Errorf("%d IDs received, want %d", len(received), n)
	}
	s := f.m.Stats()
	if f.srv.RandomlyFailed() == 0 || s.SendFailuresTotal != 0 || s.SendsTotal != n {
		t.Errorf("server failed %d at random; stats: sends %d failures %d", f.srv.RandomlyFailed(), s.SendsTotal, s.SendFailuresTotal)
	}
	t.Logf("%d attempts, %d answered 429 by the quota, %d failed at random; pacing %+v",
		f.srv.TotalAttempts(), f.srv.RateLimited(), f.srv.RandomlyFailed(), s.Pacing)
}

// A rate so low that the wait would overflow a time.Duration still waits
// (a negative duration would let the call through at once).
func TestLimiterTinyRateStillWaits(t *testing.T) {
	clock := newAutoClock()
	l := connection.NewLimiter(connection.LimiterConfig{Rate: 1e-15, Burst: 1, Clock: clock})
	start := clock.Now()
	_ = l.Wait(context.Background())
	_ = l.Wait(context.Background())
	if d := clock.Now().Sub(start); d < time.Hour {
		t.Errorf("the second call at 1e-15/s waited %v", d)
	}
}

// A throttled attempt is retried as soon as the Limiter has lowered its
// rate, not after its backoff: here the backoffs are an hour long on a
// clock that never moves. Eight connections throttled at once by a
// Broadcast lower the rate and are all delivered; a Send's throttled
// attempt is retried when the Limiter lowers its rate.
func TestPacingThrottledRetriesWaitForTheLimiterNotTheBackoff(t *testing.T) {
	frozen := newManualClock() // the manager's: backoff timers never fire
	limClock := newAutoClock()
	lim := connection.NewLimiter(connection.LimiterConfig{Rate: 1000, Burst: 100, Clock: limClock})
	f := newFixture(t, connection.WithClock(frozen), connection.WithLimiter(lim),
		connection.WithRand(func(n int64) int64 { return n - 1 }),
		connection.WithRetry(connection.RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}))
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	f.connect(t, ids...)
	// A guard in real time, should the retries wait for their backoff.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, id := range ids {
		f.srv.Script(id, 429)
	}
	if err := f.m.Broadcast(ctx, ids, "broadcast"); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	if s := lim.Stats(); s.ThrottleEventsTotal != 1 || s.Rate >= 1000 {
		t.Fatalf("after the Broadcast: %+v, want one decrease", s)
	}

	for len(frozen.after) > 0 { // the Broadcast's retry timers
		<-frozen.after
	}
	f.srv.Script("a", 429)
	sent := make(chan error, 1)
	go func() { sent <- f.m.Send(ctx, "a", "send") }()
	select {
	case d := <-frozen.after: // the retry is armed with its backoff
		if d != time.Hour {
			t.Fatalf("backoff %v, want 1h", d)
		}
	case err := <-sent:
		t.Fatalf("Send returned %v before its retry", err)
	}
	// Throttling of the account, reported from outside the manager,
	// lowers the rate: the retry goes.
	limClock.Advance(time.Second)
	for _, id := range []string{"x", "y", "z"} {
		lim.Throttled(id)
	}
	if err := <-sent; err != nil {
		t.Errorf("Send: %v", err)
	}
	for _, id := range ids {
		want := 1
		if id == "a" {
			want = 2
		}
		if got := f.srv.Received(id); len(got) != want {
			t.Errorf("%s received %d messages, want %d", id, len(got), want)
		}
	}
	if s := lim.Stats(); s.ThrottleEventsTotal != 2 || s.ThrottledTotal != 12 {
		t.Errorf("after the Send: %+v, want a second decrease", s)
	}
	if !frozen.Now().Equal(newManualClock().Now()) {
		t.Errorf("the manager's clock moved to %v", frozen.Now())
	}
}

// 429s that never add up to throttling of the account (here a second
// apart on the Limiter's clock, as full buffers would answer) lower
// nothing: each retry waits for its backoff, and every ID is delivered
// once.
func TestPacingBroadcastScatteredThrottlingKeepsTheBackoff(t *testing.T) {
	lim := connection.NewLimiter(connection.LimiterConfig{Rate: 1000, Burst: 100, Clock: &tickClock{now: time.Unix(1e9, 0)}})
	f := newFixture(t, connection.WithLimiter(lim), connection.WithRand(func(n int64) int64 { return n - 1 }),
		connection.WithRetry(connection.RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}))
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("full-%03d", i)
		f.srv.Script(ids[i], 429)
	}
	f.connect(t, ids...)
	start := f.clock.Now()
	if err := f.m.Broadcast(context.Background(), ids, "m"); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	for _, id := range ids {
		if n := len(f.srv.Received(id)); n != 1 {
			t.Errorf("%s received %d", id, n)
		}
	}
	s := f.m.Stats()
	if s.RetriesTotal != 200 || s.Pacing.ThrottledTotal != 200 || s.Pacing.ThrottleEventsTotal != 0 || s.Pacing.Rate != 1000 {
		t.Errorf("stats: retries %d, pacing %+v", s.RetriesTotal, s.Pacing)
	}
	if d := f.clock.Now().Sub(start); d < time.Hour {
		t.Errorf("the retries waited %v, want their hour of backoff", d)
	}
}

// tickClock moves a second forward every time it is read.
type tickClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func (c *tickClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}
