package connection

import (
	"context"
	"sync"
)

// lifecycle admits, counts and cancels the manager's work, like
// http.Server does for requests: after close() nothing new is admitted;
// wait() returns when the work in flight is done; stop() cancels it.
//
// Each unit of work gets a context derived from its caller's, registered
// here so that stop() can cancel it. That is the manager's stop signal,
// without a context.Background() of its own.
type lifecycle struct {
	mu      sync.Mutex
	closing bool // Shutdown started: no new foreground work
	stopped bool // Shutdown's deadline passed: no new work at all
	nextID  uint64
	cancels map[uint64]context.CancelCauseFunc
	fg, bg  int
	allIdle chan struct{} // closed when fg+bg drops to 0; nil if nobody waits
	bgIdle  chan struct{} // closed when bg drops to 0; nil if nobody waits
}

func newLifecycle() *lifecycle {
	return &lifecycle{cancels: map[uint64]context.CancelCauseFunc{}}
}

// begin admits one unit of work. Foreground work (Send, Broadcast,
// IsActive) is refused once closing; background work (LastPing writes
// started by foreground work still in flight) only once stopped. The
// returned context is cancelled by stop(); done must be called exactly
// once when the work ends.
func (l *lifecycle) begin(ctx context.Context, background bool) (context.Context, func(), error) {
	ctx, cancel := context.WithCancelCause(ctx)
	l.mu.Lock()
	if l.stopped || (l.closing && !background) {
		l.mu.Unlock()
		cancel(ErrShuttingDown)
		return nil, nil, ErrShuttingDown
	}
	id := l.nextID
	l.nextID++
	l.cancels[id] = cancel
	if background {
		l.bg++
	} else {
		l.fg++
	}
	l.mu.Unlock()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			cancel(nil)
			l.end(id, background)
		})
	}, nil
}

func (l *lifecycle) end(id uint64, background bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.cancels, id)
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
	cancels := make([]context.CancelCauseFunc, 0, len(l.cancels))
	for _, c := range l.cancels {
		cancels = append(cancels, c)
	}
	l.mu.Unlock()
	// Cancelling runs context.AfterFunc callbacks: never under the lock.
	for _, c := range cancels {
		c(cause)
	}
}
