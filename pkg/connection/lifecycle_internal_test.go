package connection

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitDone fails the test if ctx is not cancelled within a generous
// bound: the watchdog looks every timeout/8, so this only catches a
// watchdog that never fires.
func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context was never cancelled")
	}
}

// TestWatchdogTimesOutAUnitAttemptAndRenewsItsContext: an attempt past
// its timeout has its unit's context cancelled with errAttemptTimedOut,
// endAttempt says so and hands the unit a live context for the retry,
// and an attempt that ends in time leaves the context alone.
func TestWatchdogTimesOutAUnitAttemptAndRenewsItsContext(t *testing.T) {
	l := newLifecycle(200 * time.Millisecond)
	u, err := l.begin(context.Background(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer u.done()

	u.startAttempt()
	if u.endAttempt() {
		t.Fatal("an attempt that ended at once timed out")
	}
	if u.ctx.Err() != nil {
		t.Fatalf("context cancelled by an attempt in time: %v", context.Cause(u.ctx))
	}

	old := u.ctx
	u.startAttempt()
	waitDone(t, old)
	if cause := context.Cause(old); !errors.Is(cause, errAttemptTimedOut) {
		t.Fatalf("cause = %v, want errAttemptTimedOut", cause)
	}
	if !u.endAttempt() {
		t.Fatal("endAttempt did not report the timeout")
	}
	if u.ctx == old || u.ctx.Err() != nil {
		t.Fatalf("no live context after the timeout: %v", u.ctx.Err())
	}
	// The fresh context is registered: stop cancels it.
	l.stop(ErrShuttingDown)
	if cause := context.Cause(u.ctx); !errors.Is(cause, ErrShuttingDown) {
		t.Fatalf("after stop, cause = %v, want ErrShuttingDown", cause)
	}
}

// TestWatchdogRenewAfterStopIsCancelled: an attempt that timed out while
// the lifecycle stopped gets a fresh context that is already cancelled
// with ErrShuttingDown, so the retry loop ends instead of sending again.
func TestWatchdogRenewAfterStopIsCancelled(t *testing.T) {
	l := newLifecycle(200 * time.Millisecond)
	u, err := l.begin(context.Background(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer u.done()
	old := u.ctx
	u.startAttempt()
	waitDone(t, old)
	l.stop(ErrShuttingDown)
	if !u.endAttempt() {
		t.Fatal("endAttempt did not report the timeout")
	}
	if cause := context.Cause(u.ctx); !errors.Is(cause, ErrShuttingDown) {
		t.Fatalf("renewed context's cause = %v, want ErrShuttingDown", cause)
	}
}

// TestWatchdogBroadcastAttempts: each attempt of a Broadcast has a
// context of its own; only the one past its timeout is cancelled, the
// parent (the Broadcast's) never is, and the watchdog disarms once no
// attempt runs.
func TestWatchdogBroadcastAttempts(t *testing.T) {
	l := newLifecycle(200 * time.Millisecond)
	u, err := l.begin(context.Background(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer u.done()
	slow := l.startAttempt(u.ctx)
	waitDone(t, slow.ctx)
	fast := l.startAttempt(u.ctx)
	if fast.end() {
		t.Fatal("an attempt that ended at once timed out")
	}
	if !slow.end() {
		t.Fatal("the slow attempt did not time out")
	}
	if u.ctx.Err() != nil {
		t.Fatalf("the Broadcast's context was cancelled: %v", context.Cause(u.ctx))
	}
	entries, attempts := l.registered()
	if entries != 1 || attempts != 0 {
		t.Fatalf("%d entries, %d attempts left; want the unit's only", entries, attempts)
	}
	// With nothing armed the watchdog stops rearming itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if !l.watching.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watchdog still armed with no attempt running")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// registered counts the registered slots and those with an attempt
// running.
func (l *lifecycle) registered() (slots, armed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := l.live.next; s != &l.live; s = s.next {
		slots++
		if s.deadline.Load() > noAttempt {
			armed++
		}
	}
	return slots, armed
}

// TestWatchdogNeverLeavesAnAttemptUnwatched: attempts armed while the
// watchdog goes idle, and concurrently from many units whose slots are
// recycled, all time out, and an attempt that ends in time never reports
// a timeout.
func TestWatchdogNeverLeavesAnAttemptUnwatched(t *testing.T) {
	l := newLifecycle(20 * time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 30 {
				u, err := l.begin(context.Background(), false, false)
				if err != nil {
					t.Error(err)
					return
				}
				old := u.ctx
				u.startAttempt()
				if (g+i)%3 == 0 {
					waitDone(t, old)
					if !u.endAttempt() {
						t.Error("endAttempt did not report the timeout")
					}
				} else if u.endAttempt() {
					t.Error("an attempt that ended at once timed out")
				}
				u.done()
				// Let the watchdog go idle now and then, so the next
				// attempt has to wake it.
				if i%7 == 0 {
					time.Sleep(time.Duration(g) * 3 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if slots, armed := l.registered(); slots != 0 || armed != 0 {
		t.Fatalf("%d slots, %d armed after every unit ended", slots, armed)
	}
}

// TestLazyUnitDerivesItsContextOnlyWhenAsked: a lazy unit runs under its
// caller's context, which stop() leaves alone (the unit sees halted
// instead); the context it derives is cancelled by stop(), at once if
// stop() has already run.
func TestLazyUnitDerivesItsContextOnlyWhenAsked(t *testing.T) {
	l := newLifecycle(time.Second)
	parent := context.Background()
	u, err := l.begin(parent, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if u.ctx != parent || u.stopped() {
		t.Fatal("a lazy unit does not start under its caller's context")
	}
	v, err := l.begin(parent, false, true)
	if err != nil {
		t.Fatal(err)
	}
	v.derive()
	if v.ctx == parent || v.ctx.Err() != nil {
		t.Fatal("derive gave no live context of the unit's own")
	}
	l.stop(ErrShuttingDown)
	if !u.stopped() || u.ctx.Err() != nil {
		t.Fatalf("after stop: stopped %v, caller's context %v", u.stopped(), u.ctx.Err())
	}
	if cause := context.Cause(v.ctx); !errors.Is(cause, ErrShuttingDown) {
		t.Fatalf("derived context's cause = %v, want ErrShuttingDown", cause)
	}
	u.derive() // after stop: cancelled at once
	if cause := context.Cause(u.ctx); !errors.Is(cause, ErrShuttingDown) {
		t.Fatalf("context derived after stop: cause = %v, want ErrShuttingDown", cause)
	}
	u.done()
	v.done()
	if slots, _ := l.registered(); slots != 0 {
		t.Fatalf("%d slots left", slots)
	}
}
