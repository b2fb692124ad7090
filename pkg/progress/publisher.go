package progress

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Publisher is the Reporter the processor creates for each request. It owns
// one delivery goroutine, started by NewPublisher and stopped by Close.
//
// Report and ReportDetails only store the update and wake the goroutine; the
// goroutine delivers the newest stored update whenever the rate allows, so
// intermediate updates may be skipped but an older update is never delivered
// after a newer one. A percentage lower than the previous one is accepted and
// delivered like any other (a handler may restart a phase); ordering follows
// the calls, not the values.
//
// Send and persist run one after the other on the same goroutine, with the
// context given to NewPublisher; a stuck send therefore delays persisting,
// but never the handler.
type Publisher struct {
	send, persist Func
	cfg           config

	// wake has room for one signal: Report never blocks on it, and one
	// pending signal is enough to make the goroutine look at the state.
	wake   chan struct{}
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the goroutine has returned
	cancel context.CancelFunc

	mu          sync.Mutex
	seq         uint64
	toSend      *Update // newest update not yet taken for sending
	toPersist   *Update // newest update not yet taken for persisting
	closed      bool    // Close called or delivery context ended: Report refuses
	closeCalled bool
	lost        error // set when the goroutine ended with updates undelivered
}

var _ Reporter = (*Publisher)(nil)

// NewPublisher starts a Publisher delivering updates through send and persist,
// either of which may be nil to skip that step. Both run with ctx (the
// processor passes one detached from the client and bounded by its own
// lifetime); when ctx ends, delivery stops and Report returns ErrClosed.
// The caller must call Close.
func NewPublisher(ctx context.Context, send, persist Func, opts ...Option) *Publisher {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	dctx, cancel := context.WithCancel(ctx)
	p := &Publisher{
		send:    send,
		persist: persist,
		cfg:     cfg,
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		cancel:  cancel,
	}
	go p.run(dctx)
	return p
}

// Report records an update. It never blocks on delivery.
func (p *Publisher) Report(percentage float64, message string) error {
	return p.ReportDetails(percentage, message, nil)
}

// ReportDetails records an update with structured details, marshalled to
// JSON now. It never blocks on delivery.
func (p *Publisher) ReportDetails(percentage float64, message string, details any) error {
	u, err := newUpdate(percentage, message, details)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.seq++
	u.Sequence = p.seq
	p.toSend = &u
	p.toPersist = &u
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close stops accepting reports, delivers the newest pending update to both
// send and persist without waiting for the rate limit, and waits for the
// delivery goroutine to end. It returns the errors of that final delivery
// (also passed to the error handler), or an error wrapping the NewPublisher
// context's error if delivery had stopped with updates pending.
//
// If ctx ends first, Close cancels the delivery in progress, waits for the
// goroutine (which requires the Funcs to honour their context) and returns
// ctx.Err(). Calling Close again returns nil.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	again := p.closeCalled
	p.closeCalled = true
	if !again {
		close(p.stop)
	}
	p.mu.Unlock()

	select {
	case <-p.done:
	case <-ctx.Done():
		if again {
			return ctx.Err()
		}
		p.cancel()
		<-p.done
		return ctx.Err()
	}
	p.cancel()
	if again {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

// run is the delivery goroutine.
func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	var lastSend, lastPersist time.Time // zero: the first update goes at once
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	for {
		now := time.Now()
		var wait time.Duration = -1
		delivered := false

		send, sendWait := p.take(&p.toSend, p.send, lastSend, p.cfg.sendInterval, now)
		if send != nil {
			lastSend = now
			p.deliver(ctx, StepSend, p.send, *send)
			delivered = true
		} else if sendWait > 0 {
			wait = sendWait
		}
		if ctx.Err() == nil {
			now = time.Now()
			persist, persistWait := p.take(&p.toPersist, p.persist, lastPersist, p.cfg.persistInterval, now)
			if persist != nil {
				lastPersist = now
				p.deliver(ctx, StepPersist, p.persist, *persist)
				delivered = true
			} else if persistWait > 0 && (wait < 0 || persistWait < wait) {
				wait = persistWait
			}
		}
		if ctx.Err() != nil {
			p.abandon(ctx)
			return
		}
		if delivered {
			continue // more may have arrived while delivering
		}

		var tick <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-p.wake:
		case <-tick:
		case <-p.stop:
			p.flush(ctx)
			return
		case <-ctx.Done():
			p.abandon(ctx)
			return
		}
		timer.Stop()
	}
}

// take removes and returns the pending update in slot if its step may run at
// now; otherwise it returns how long until it may (0 if nothing is pending).
// A nil step drops the update: there is nowhere to deliver it.
func (p *Publisher) take(slot **Update, step Func, last time.Time, interval time.Duration, now time.Time) (*Update, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *slot == nil {
		return nil, 0
	}
	if step == nil {
		*slot = nil
		return nil, 0
	}
	if !last.IsZero() {
		if due := last.Add(interval); now.Before(due) {
			return nil, due.Sub(now)
		}
	}
	u := *slot
	*slot = nil
	return u, 0
}

// deliver runs one step outside any lock and reports its failure.
func (p *Publisher) deliver(ctx context.Context, step Step, fn Func, u Update) error {
	err := fn(ctx, u)
	if err == nil {
		return nil
	}
	derr := &DeliveryError{Step: step, Update: u, Err: err}
	if p.cfg.onError != nil {
		p.cfg.onError(derr)
	}
	return derr
}

// flush delivers what is pending when Close is called, ignoring the rate.
func (p *Publisher) flush(ctx context.Context) {
	p.mu.Lock()
	send, persist := p.toSend, p.toPersist
	p.toSend, p.toPersist = nil, nil
	p.mu.Unlock()

	var errs []error
	if send != nil && p.send != nil {
		errs = append(errs, p.deliver(ctx, StepSend, p.send, *send))
	}
	if persist != nil && p.persist != nil {
		errs = append(errs, p.deliver(ctx, StepPersist, p.persist, *persist))
	}
	p.mu.Lock()
	p.lost = errors.Join(errs...)
	p.mu.Unlock()
}

// abandon ends delivery because its context ended.
func (p *Publisher) abandon(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if (p.toSend != nil && p.send != nil) || (p.toPersist != nil && p.persist != nil) {
		p.lost = fmt.Errorf("progress: delivery stopped with updates pending: %w", context.Cause(ctx))
	}
	p.toSend, p.toPersist = nil, nil
}
