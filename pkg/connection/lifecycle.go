package connection

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// lifecycle admits, counts and cancels the manager's work, like
// http.Server does for requests: after close() nothing new is admitted;
// wait() returns when the work in flight is done; stop() cancels it.
//
// Each unit of work gets a context derived from its caller's, registered
// here so that stop() can cancel it. That is the manager's stop signal,
// without a context.Background() of its own.
//
// The lifecycle also enforces the per-attempt timeout, with one watchdog
// timer for the whole manager rather than a context.WithTimeout per
// attempt. A Send's attempts run under the Send's own context, marked with
// a deadline here; a Broadcast's under a child context registered here.
// A context.WithTimeout per attempt would cost a second context (its
// allocation, its registration with its parent, the Done channel it makes
// the parent create, the same again for net/http's own child of it) and a
// runtime timer, whose arming often wakes the network poller: together
// about a tenth of the CPU a Send spends outside the HTTP client. The
// watchdog fires every attemptTimeout/watchdogTicks (at least 1 ms) while
// attempts run, so an attempt is cancelled at most that long after its
// timeout.
//
// A registration is a slot in an intrusive list, recycled through a free
// list, and its deadline is an atomic: a Send takes the lock twice (to
// register and to leave) and arms and disarms its attempts without it,
// where a map of registrations would cost four locked map operations per
// Send, on cache lines the HTTP call has just evicted.
type lifecycle struct {
	mu      sync.Mutex
	closing bool  // Shutdown started: no new foreground work
	live    slot  // sentinel of the circular list of registered slots
	free    *slot // released slots, linked by next
	fg, bg  int
	allIdle chan struct{} // closed when fg+bg drops to 0; nil if nobody waits
	bgIdle  chan struct{} // closed when bg drops to 0; nil if nobody waits

	timeout  time.Duration // of one attempt
	period   time.Duration // of the watchdog
	epoch    time.Time     // deadlines count nanoseconds from it
	watchdog *time.Timer   // stopped while watching is false
	watching atomic.Bool   // the watchdog is armed
	// halted: Shutdown's deadline passed, no new work at all. Set under
	// mu, so a check under mu sees the registrations stop() cancelled;
	// an atomic, so the calls that have no context of their own for
	// stop() to cancel can poll it (see bounds).
	halted atomic.Bool
}

// errStopped is the error of a call stopped by Shutdown through its
// bounds: like that of a call whose context Shutdown cancelled, it
// matches both context.Canceled and ErrShuttingDown.
var errStopped = fmt.Errorf("%w: %w", context.Canceled, ErrShuttingDown)

// slot is one registered context: a unit's or a Broadcast attempt's.
type slot struct {
	prev, next *slot                   // guarded by lifecycle.mu
	cancel     context.CancelCauseFunc // guarded by lifecycle.mu; nil until a lazy unit derives its context
	// deadline is when the running attempt times out, in nanoseconds
	// since the lifecycle's epoch: noAttempt if none runs, expired once
	// the watchdog has cancelled it (or is about to).
	deadline atomic.Int64
}

const (
	noAttempt = 0
	expired   = -1
)

// watchdogTicks is how many times per attempt timeout the watchdog looks
// for attempts past their deadline.
const watchdogTicks = 8

func newLifecycle(attemptTimeout time.Duration) *lifecycle {
	l := &lifecycle{
		timeout: attemptTimeout,
		period:  max(attemptTimeout/watchdogTicks, time.Millisecond),
		epoch:   time.Now(),
	}
	l.live.prev, l.live.next = &l.live, &l.live
	// Created stopped; a timer that is not running costs no goroutine.
	l.watchdog = time.AfterFunc(time.Hour, l.watch)
	l.watchdog.Stop()
	return l
}

// now is the lifecycle's clock for deadlines: monotonic nanoseconds since
// the epoch, at least 1 (so that no deadline is noAttempt). time.Since
// reads only the monotonic clock, half the cost of a time.Now.
func (l *lifecycle) now() int64 {
	return max(int64(time.Since(l.epoch)), 1)
}

// unit is one admitted piece of work: the context it runs under, which
// stop() cancels with ErrShuttingDown, and its registration, which done
// ends. It is a value, so admitting work allocates only the context.
//
// A lazy unit runs under its caller's context until it calls derive: a
// Send whose attempts go through a FastClient's pool, which are bounded
// by the attempt deadline and the halted flag instead (see bounds), only
// needs a context of its own to wait on (for the Limiter, between
// retries).
type unit struct {
	ctx    context.Context
	parent context.Context         // the caller's: ctx derives from it
	cancel context.CancelCauseFunc // nil while a lazy unit runs under parent
	l      *lifecycle
	s      *slot
	bg     bool
}

// begin admits one unit of work. Foreground work (Send, Broadcast,
// IsActive) is refused once closing; background work (LastPing writes
// started by foreground work still in flight) only once stopped. The
// unit's context, derived at once unless lazy, is cancelled by stop();
// done must be called exactly once when the work ends.
func (l *lifecycle) begin(ctx context.Context, background, lazy bool) (unit, error) {
	u := unit{ctx: ctx, parent: ctx, l: l, bg: background}
	if !lazy {
		u.ctx, u.cancel = context.WithCancelCause(ctx)
	}
	l.mu.Lock()
	if l.halted.Load() || (l.closing && !background) {
		l.mu.Unlock()
		if u.cancel != nil {
			u.cancel(ErrShuttingDown)
		}
		return unit{}, ErrShuttingDown
	}
	u.s = l.add(u.cancel)
	if background {
		l.bg++
	} else {
		l.fg++
	}
	l.mu.Unlock()
	return u, nil
}

// add registers cancel in a slot; the caller holds l.mu.
func (l *lifecycle) add(cancel context.CancelCauseFunc) *slot {
	s := l.free
	if s != nil {
		l.free = s.next
	} else {
		s = &slot{}
	}
	s.cancel = cancel
	s.prev, s.next = &l.live, l.live.next
	l.live.next.prev = s
	l.live.next = s
	return s
}

// remove unregisters s and recycles it; the caller holds l.mu, and no
// attempt of s may still run.
func (l *lifecycle) remove(s *slot) {
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.cancel = nil, nil
	s.deadline.Store(noAttempt)
	s.next, l.free = l.free, s
}

// derive gives a lazy unit its own context, which stop() cancels (at
// once if it has already run); it does nothing for a unit that has one.
func (u *unit) derive() {
	if u.cancel != nil {
		return
	}
	u.ctx, u.cancel = context.WithCancelCause(u.parent)
	l := u.l
	l.mu.Lock()
	u.s.cancel = u.cancel
	stopped := l.halted.Load()
	l.mu.Unlock()
	if stopped {
		u.cancel(ErrShuttingDown)
	}
}

// stopped reports whether stop() has run: the check of a lazy unit that
// has no context for it to cancel.
func (u *unit) stopped() bool {
	return u.l.halted.Load()
}

// done ends the unit: its context is released and Shutdown stops waiting
// for it.
func (u *unit) done() {
	if u.cancel != nil {
		u.cancel(nil)
	}
	u.l.end(u.s, u.bg)
}

// startAttempt gives the unit's context the attempt timeout: the
// watchdog cancels it, with errAttemptTimedOut, once the timeout has
// passed.
func (u *unit) startAttempt() {
	u.l.arm(u.s)
}

// endAttempt takes the attempt timeout off the unit's context and reports
// whether it expired. An expired unit gets a fresh context, so that a
// retry and the store calls after it run under a live one; if stop() has
// run, the fresh context is cancelled at once, as stop() would have.
func (u *unit) endAttempt() (timedOut bool) {
	if u.s.deadline.Swap(noAttempt) != expired {
		return false
	}
	l := u.l
	l.mu.Lock()
	old := u.cancel
	u.ctx, u.cancel = context.WithCancelCause(u.parent)
	u.s.cancel = u.cancel
	stopped := l.halted.Load()
	l.mu.Unlock()
	old(errAttemptTimedOut)
	if stopped {
		u.cancel(ErrShuttingDown)
	}
	return true
}

// attempt is the context of one attempt of a Broadcast: a child of the
// Broadcast's context with the attempt timeout.
type attempt struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	l      *lifecycle
	s      *slot
}

// startAttempt derives an attempt's context from parent (a unit's) and
// gives it the attempt timeout.
func (l *lifecycle) startAttempt(parent context.Context) attempt {
	a := attempt{l: l}
	a.ctx, a.cancel = context.WithCancelCause(parent)
	l.mu.Lock()
	a.s = l.add(a.cancel)
	l.mu.Unlock()
	l.arm(a.s)
	return a
}

// end releases the attempt's context and reports whether its timeout
// expired.
func (a *attempt) end() (timedOut bool) {
	timedOut = a.s.deadline.Swap(noAttempt) == expired
	l := a.l
	l.mu.Lock()
	l.remove(a.s)
	l.mu.Unlock()
	a.cancel(nil)
	return timedOut
}

// arm sets the deadline of s and makes sure the watchdog runs.
//
// It stores the deadline before it looks at watching, and the watchdog
// clears watching before it looks at the deadlines, so at least one of
// them sees the other: an attempt is never left unwatched.
func (l *lifecycle) arm(s *slot) {
	s.deadline.Store(l.now() + int64(l.timeout))
	if !l.watching.Load() {
		l.wake()
	}
}

// wake starts the watchdog if it is not running.
func (l *lifecycle) wake() {
	if l.watching.CompareAndSwap(false, true) {
		l.watchdog.Reset(l.period)
	}
}

// watch is the watchdog: it cancels the contexts whose attempt is past
// its deadline, and rearms itself while attempts run.
func (l *lifecycle) watch() {
	var timedOut []context.CancelCauseFunc
	l.mu.Lock()
	armed := l.expire(l.now(), &timedOut)
	stopped := l.halted.Load()
	l.mu.Unlock()
	switch {
	case armed && !stopped:
		l.watchdog.Reset(l.period)
	default:
		l.watching.Store(false)
		// An attempt armed during the scan may have seen watching
		// still true and left the waking to this watchdog.
		if !stopped && l.anyArmed() {
			l.wake()
		}
	}
	// Cancelling runs context.AfterFunc callbacks: never under the lock.
	for _, cancel := range timedOut {
		cancel(errAttemptTimedOut)
	}
}

// expire marks the slots whose attempt is past its deadline at now as
// expired, adding their cancel functions to timedOut, and reports
// whether any attempt is left running; the caller holds l.mu.
func (l *lifecycle) expire(now int64, timedOut *[]context.CancelCauseFunc) (armed bool) {
	for s := l.live.next; s != &l.live; s = s.next {
		d := s.deadline.Load()
		switch {
		case d <= noAttempt:
		case now < d:
			armed = true
		case s.deadline.CompareAndSwap(d, expired):
			if s.cancel != nil {
				*timedOut = append(*timedOut, s.cancel)
			}
		default:
			// The attempt ended, or another began, during the check.
			armed = true
		}
	}
	return armed
}

// anyArmed reports whether an attempt is running.
func (l *lifecycle) anyArmed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := l.live.next; s != &l.live; s = s.next {
		if s.deadline.Load() > noAttempt {
			return true
		}
	}
	return false
}

func (l *lifecycle) end(s *slot, background bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remove(s)
	if background {
		l.bg--
		if l.bg == 0 && l.bgIdle != nil {
			close(l.bgIdle)
			l.bgIdle = nil
		}
	} else {
		l.fg--
	}
	if l.fg+l.bg == 0 && l.allIdle != nil {
		close(l.allIdle)
		l.allIdle = nil
	}
}

// close stops admitting foreground work. It reports whether this call
// was the first.
func (l *lifecycle) close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := !l.closing
	l.closing = true
	return first
}

func (l *lifecycle) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing
}

// wait blocks until no work (or, with backgroundOnly, no background work)
// is in flight, or ctx ends.
func (l *lifecycle) wait(ctx context.Context, backgroundOnly bool) error {
	l.mu.Lock()
	var ch chan struct{}
	switch {
	case backgroundOnly && l.bg == 0, !backgroundOnly && l.fg+l.bg == 0:
		l.mu.Unlock()
		return nil
	case backgroundOnly:
		if l.bgIdle == nil {
			l.bgIdle = make(chan struct{})
		}
		ch = l.bgIdle
	default:
		if l.allIdle == nil {
			l.allIdle = make(chan struct{})
		}
		ch = l.allIdle
	}
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop refuses all new work and cancels everything in flight with cause.
func (l *lifecycle) stop(cause error) {
	l.mu.Lock()
	l.closing = true
	l.halted.Store(true)
	var cancels []context.CancelCauseFunc
	for s := l.live.next; s != &l.live; s = s.next {
		if s.cancel != nil {
			cancels = append(cancels, s.cancel)
		}
	}
	if l.watchdog.Stop() {
		l.watching.Store(false)
	}
	l.mu.Unlock()
	// Cancelling runs context.AfterFunc callbacks: never under the lock.
	for _, c := range cancels {
		c(cause)
	}
}
