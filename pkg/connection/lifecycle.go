package connection

import (
	"context"
	"sync"
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
// timer for the whole manager instead of a context.WithTimeout per
// attempt. A Send's attempts run under the Send's own context, marked with
// a deadline here; a Broadcast's under a child context registered here.
// Each context.WithTimeout cost a second context (its allocation, its
// registration with its parent, the Done channel it makes the parent
// create, the same again for net/http's own child of it) and a runtime
// timer, whose arming often wakes the network poller: together about a
// tenth of the CPU a Send spends outside the HTTP client. The watchdog
// fires every attemptTimeout/watchdogTicks (at least 1 ms) while attempts
// run, so an attempt is cancelled at most that long after its timeout.
type lifecycle struct {
	mu      sync.Mutex
	closing bool // Shutdown started: no new foreground work
	stopped bool // Shutdown's deadline passed: no new work at all
	nextID  uint64
	entries map[uint64]entry
	fg, bg  int
	allIdle chan struct{} // closed when fg+bg drops to 0; nil if nobody waits
	bgIdle  chan struct{} // closed when bg drops to 0; nil if nobody waits

	timeout  time.Duration // of one attempt
	period   time.Duration // of the watchdog
	watchdog *time.Timer   // nil until the first attempt
	watching bool          // the watchdog is armed
	attempts int           // entries with a deadline
}

// entry is one registered context: a unit's or an attempt's.
type entry struct {
	cancel   context.CancelCauseFunc
	deadline time.Time // when its attempt times out; zero if none runs
	expired  bool      // the watchdog cancelled it (or is about to)
}

// watchdogTicks is how many times per attempt timeout the watchdog looks
// for attempts past their deadline.
const watchdogTicks = 8

func newLifecycle(attemptTimeout time.Duration) *lifecycle {
	return &lifecycle{
		entries: map[uint64]entry{},
		timeout: attemptTimeout,
		period:  max(attemptTimeout/watchdogTicks, time.Millisecond),
	}
}

// unit is one admitted piece of work: the context it runs under, which
// stop() cancels with ErrShuttingDown, and its registration, which done
// ends. It is a value, so admitting work allocates only the context.
type unit struct {
	ctx    context.Context
	parent context.Context // the caller's: ctx derives from it
	cancel context.CancelCauseFunc
	l      *lifecycle
	id     uint64
	bg     bool
}

// begin admits one unit of work. Foreground work (Send, Broadcast,
// IsActive) is refused once closing; background work (LastPing writes
// started by foreground work still in flight) only once stopped. The
// unit's context is cancelled by stop(); done must be called exactly once
// when the work ends.
func (l *lifecycle) begin(ctx context.Context, background bool) (unit, error) {
	u := unit{parent: ctx, l: l, bg: background}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	l.mu.Lock()
	if l.stopped || (l.closing && !background) {
		l.mu.Unlock()
		u.cancel(ErrShuttingDown)
		return unit{}, ErrShuttingDown
	}
	u.id = l.add(u.cancel)
	if background {
		l.bg++
	} else {
		l.fg++
	}
	l.mu.Unlock()
	return u, nil
}

// add registers cancel; the caller holds l.mu.
func (l *lifecycle) add(cancel context.CancelCauseFunc) uint64 {
	id := l.nextID
	l.nextID++
	l.entries[id] = entry{cancel: cancel}
	return id
}

// done ends the unit: its context is released and Shutdown stops waiting
// for it.
func (u *unit) done() {
	u.cancel(nil)
	u.l.end(u.id, u.bg)
}

// startAttempt gives the unit's context the attempt timeout: the
// watchdog cancels it, with errAttemptTimedOut, once the timeout has
// passed.
func (u *unit) startAttempt() {
	u.l.arm(u.id)
}

// endAttempt takes the attempt timeout off the unit's context and reports
// whether it expired. An expired unit gets a fresh context, so that a
// retry and the store calls after it run under a live one; if stop() has
// run, the fresh context is cancelled at once, as stop() would have.
func (u *unit) endAttempt() (timedOut bool) {
	l := u.l
	l.mu.Lock()
	timedOut = l.disarm(u.id)
	if !timedOut {
		l.mu.Unlock()
		return false
	}
	old := u.cancel
	u.ctx, u.cancel = context.WithCancelCause(u.parent)
	l.entries[u.id] = entry{cancel: u.cancel}
	stopped := l.stopped
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
	id     uint64
}

// startAttempt derives an attempt's context from parent (a unit's) and
// gives it the attempt timeout.
func (l *lifecycle) startAttempt(parent context.Context) attempt {
	a := attempt{l: l}
	a.ctx, a.cancel = context.WithCancelCause(parent)
	deadline := time.Now().Add(l.timeout)
	l.mu.Lock()
	a.id = l.add(a.cancel)
	l.setDeadline(a.id, entry{cancel: a.cancel}, deadline)
	l.mu.Unlock()
	return a
}

// end releases the attempt's context and reports whether its timeout
// expired.
func (a *attempt) end() (timedOut bool) {
	l := a.l
	l.mu.Lock()
	timedOut = l.disarm(a.id)
	delete(l.entries, a.id)
	l.mu.Unlock()
	a.cancel(nil)
	return timedOut
}

// arm sets the deadline of entry id.
func (l *lifecycle) arm(id uint64) {
	deadline := time.Now().Add(l.timeout)
	l.mu.Lock()
	if e, ok := l.entries[id]; ok {
		l.setDeadline(id, e, deadline)
	}
	l.mu.Unlock()
}

// setDeadline stores e with deadline as entry id and makes sure the
// watchdog runs; the caller holds l.mu.
func (l *lifecycle) setDeadline(id uint64, e entry, deadline time.Time) {
	e.deadline = deadline
	l.entries[id] = e
	l.attempts++
	if l.watching || l.stopped {
		return
	}
	l.watching = true
	if l.watchdog == nil {
		l.watchdog = time.AfterFunc(l.period, l.watch)
	} else {
		l.watchdog.Reset(l.period)
	}
}

// disarm clears the deadline of entry id and reports whether it had
// expired; the caller holds l.mu.
func (l *lifecycle) disarm(id uint64) (expired bool) {
	e, ok := l.entries[id]
	if !ok {
		return false
	}
	if !e.deadline.IsZero() {
		l.attempts--
	}
	expired = e.expired
	l.entries[id] = entry{cancel: e.cancel}
	return expired
}

// watch is the watchdog: it cancels the contexts whose attempt is past
// its deadline, and rearms itself while attempts run.
func (l *lifecycle) watch() {
	now := time.Now()
	var expired []context.CancelCauseFunc
	l.mu.Lock()
	for id, e := range l.entries {
		if e.deadline.IsZero() || now.Before(e.deadline) {
			continue
		}
		expired = append(expired, e.cancel)
		l.attempts--
		l.entries[id] = entry{cancel: e.cancel, expired: true}
	}
	if l.attempts > 0 && !l.stopped {
		l.watchdog.Reset(l.period)
	} else {
		l.watching = false
	}
	l.mu.Unlock()
	// Cancelling runs context.AfterFunc callbacks: never under the lock.
	for _, cancel := range expired {
		cancel(errAttemptTimedOut)
	}
}

func (l *lifecycle) end(id uint64, background bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.disarm(id)
	delete(l.entries, id)
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
	l.closing, l.stopped = true, true
	cancels := make([]context.CancelCauseFunc, 0, len(l.entries))
	for _, e := range l.entries {
		cancels = append(cancels, e.cancel)
	}
	if l.watchdog != nil && l.watchdog.Stop() {
		l.watching = false
	}
	l.mu.Unlock()
	// Cancelling runs context.AfterFunc callbacks: never under the lock.
	for _, c := range cancels {
		c(cause)
	}
}
