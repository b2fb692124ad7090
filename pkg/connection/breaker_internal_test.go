package connection

import (
	"fmt"
	"testing"
	"time"
)

type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time                         { return c.now }
func (c *stepClock) After(d time.Duration) <-chan time.Time { panic("not used") }

func (cs *connStates) countsAgree(t *testing.T) {
	t.Helper()
	closed, open, half := cs.stateCounts()
	if n := cs.tracked(); int64(n) != closed+open+half {
		t.Fatalf("running counts %d+%d+%d disagree with %d remembered", closed, open, half, n)
	}
}

// TestConnStatesForgetIdleEntries checks that memory stays bounded by the
// connections used within IdleTTL, and that the running counts always
// equal what is remembered.
func TestConnStatesForgetIdleEntries(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	cs := newConnStates(BreakerSettings{Threshold: 2, Cooldown: 30 * time.Second, IdleTTL: time.Minute}, clock)
	// Wave 1: 10,000 connections, each failing once (closed, 1 failure),
	// 1,000 of them twice (open).
	for i := 0; i < 10000; i++ {
		id := fmt.Sprint("a", i)
		tk, _ := cs.allow(id, time.Time{})
		cs.record(id, tk, kindServerError, time.Time{})
		if i < 1000 {
			tk, _ := cs.allow(id, time.Time{})
			cs.record(id, tk, kindServerError, time.Time{})
		}
	}
	if closed, open, _ := cs.stateCounts(); closed != 9000 || open != 1000 {
		t.Fatalf("counts = %d closed, %d open", closed, open)
	}
	cs.countsAgree(t)

	// Wave 2, past IdleTTL and the cooldown: the first wave is forgotten
	// as the new entries sweep their shards.
	clock.now = clock.now.Add(2 * time.Minute)
	for i := 0; i < 64*sweepEvery; i++ {
		id := fmt.Sprint("b", i)
		tk, _ := cs.allow(id, time.Time{})
		cs.record(id, tk, kindNetwork, time.Time{})
	}
	cs.countsAgree(t)
	// Allow one shard that happened to get too few new entries to sweep.
	if n := cs.tracked(); n > 64*sweepEvery+10000/numShards*2 {
		t.Fatalf("%d entries remembered; the idle first wave should be gone", n)
	}
	remaining := 0
	for i := 0; i < 10000; i++ {
		id := fmt.Sprint("a", i)
		if _, ok := cs.shard(id).m[id]; ok {
			remaining++
		}
	}
	if remaining > 10000/numShards*2 {
		t.Errorf("%d of the idle first wave still remembered", remaining)
	}
}

func TestConnStatesKeepOpenBreakerUntilCooldown(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	cs := newConnStates(BreakerSettings{Threshold: 1, Cooldown: 10 * time.Minute, IdleTTL: time.Minute}, clock)
	tk, _ := cs.allow("x", time.Time{})
	cs.record("x", tk, kindThrottled, time.Time{})
	clock.now = clock.now.Add(5 * time.Minute) // idle, but still cooling down
	cs.sweep(cs.shard("x"), clock.now)
	if _, ok := cs.allow("x", time.Time{}); ok {
		t.Fatal("an open breaker in its cooldown was forgotten")
	}
	clock.now = clock.now.Add(11 * time.Minute)
	cs.sweep(cs.shard("x"), clock.now)
	if cs.tracked() != 0 {
		t.Fatal("idle open breaker past its cooldown not forgotten")
	}
	cs.countsAgree(t)
}

func TestConnStatesForgetGone(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	cs := newConnStates(BreakerSettings{Threshold: 1, Cooldown: time.Minute, IdleTTL: time.Minute}, clock)
	tk, _ := cs.allow("x", time.Time{})
	cs.record("x", tk, kindServerError, time.Time{})
	cs.forget("x")
	if cs.tracked() != 0 {
		t.Fatal("gone connection remembered")
	}
	cs.countsAgree(t)
}

// A result that arrives after the breaker moved on (it opened and
// half-opened meanwhile) must not close it.
func TestConnStatesIgnoreStaleResults(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	cs := newConnStates(BreakerSettings{Threshold: 1, Cooldown: time.Second, IdleTTL: time.Minute}, clock)
	tk, _ := cs.allow("x", time.Time{})
	cs.record("x", tk, kindServerError, time.Time{}) // opens
	slow := ticket{}                                 // a call allowed while the breaker was still closed
	clock.now = clock.now.Add(2 * time.Second)
	probe, ok := cs.allow("x", time.Time{})
	if !ok {
		t.Fatal("probe refused")
	}
	cs.record("x", slow, kindOK, time.Time{}) // stale success: ignored
	if _, open, half := cs.stateCounts(); half != 1 || open != 0 {
		t.Fatalf("stale result changed the breaker: open %d half %d", open, half)
	}
	cs.record("x", probe, kindOK, time.Time{})
	if closed, _, _ := cs.stateCounts(); closed != 1 {
		t.Fatal("probe success did not close")
	}
}

// TestBreakerSuccessesAfterAFailureReset: a success allowed while no
// failure was counted changes nothing (record skips it), so failures of
// calls in flight beside it still count; a success allowed after a
// failure resets the count.
func TestBreakerSuccessesAfterAFailureReset(t *testing.T) {
	clock := &stepClock{now: time.Unix(1e9, 0)}
	cs := newConnStates(BreakerSettings{Threshold: 3, Cooldown: time.Minute, IdleTTL: time.Hour}, clock)
	fail := func() {
		tk, ok := cs.allow("x", time.Time{})
		if !ok {
			t.Fatal("breaker open too soon")
		}
		cs.record("x", tk, kindServerError, time.Time{})
	}
	early, _ := cs.allow("x", time.Time{}) // in flight while two others fail
	if !early.clean {
		t.Fatal("first call's ticket is not clean")
	}
	fail()
	fail()
	cs.record("x", early, kindOK, time.Time{})
	late, _ := cs.allow("x", time.Time{})
	if late.clean {
		t.Fatal("a ticket after two failures is clean")
	}
	fail() // the third in a row, counting from before the early success
	if _, ok := cs.allow("x", time.Time{}); ok {
		t.Fatal("three failures did not open the breaker")
	}
	cs.record("x", late, kindOK, time.Time{}) // from before it opened: ignored
	if _, ok := cs.allow("x", time.Time{}); ok {
		t.Fatal("a success from before the breaker opened closed it")
	}

	// A success allowed after a failure resets the count.
	cs.forget("y")
	tk, _ := cs.allow("y", time.Time{})
	cs.record("y", tk, kindServerError, time.Time{})
	tk, _ = cs.allow("y", time.Time{})
	cs.record("y", tk, kindServerError, time.Time{})
	tk, _ = cs.allow("y", time.Time{})
	cs.record("y", tk, kindOK, time.Time{})
	for range 2 {
		tk, _ = cs.allow("y", time.Time{})
		cs.record("y", tk, kindServerError, time.Time{})
	}
	if _, ok := cs.allow("y", time.Time{}); !ok {
		t.Fatal("failures before a success were still counted")
	}
	cs.countsAgree(t)
}
