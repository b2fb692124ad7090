package streamer

import (
	"context"
	"log/slog"
)

// Start runs the in-process worker pool, which works from the processor's
// Queue: a Router given the same Queue ([WithQueue]) hands it every request
// it stores from now on. Unless [WithSweepInterval] turned it off, the
// pool also sweeps for stalled requests at Start (work a previous process
// left behind) and then periodically, queueing them for its workers; it
// looks again at a request a client waits for when its lease ends, and
// finds out what became of the requests whose outcome it could not write
// (the store failed) once the store answers, and sends again, for about a
// minute, a final message whose send failed for a reason other than the
// user having no live connection (a timeout on a loaded machine, say). ctx
// supplies values (not cancellation) to the workers; stop them with
// Shutdown. Start after Shutdown returns ErrProcessorClosed; a second
// Start does nothing.
func (p *Processor) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.stop:
		return ErrProcessorClosed
	default:
	}
	if p.started {
		return nil
	}
	p.started = true
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.force = cancel
	for range p.workers {
		p.wg.Add(1)
		go p.work(wctx)
	}
	p.queue.workers.Add(1)
	if p.sweepEvery > 0 {
		// Its own context, cancelled as soon as Shutdown starts: a sweep
		// in progress is not work to wait for.
		sctx, endSweeps := context.WithCancel(wctx)
		p.endSweeps = endSweeps
		p.watching.Store(true)
		p.queue.watchers.Add(1)
		p.wg.Add(1)
		go p.sweepLoop(sctx)
	}
	p.log.InfoContext(ctx, "processor started", slog.Int("workers", p.workers), slog.Int("queue", p.queue.Cap()),
		slog.String("owner", p.owner), slog.Duration("sweep_interval", p.sweepEvery))
	return nil
}

func (p *Processor) work(ctx context.Context) {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case id := <-p.queue.items:
			<-p.queue.slots
			// select picks at random among ready cases: once Shutdown has
			// begun, nothing new is claimed, even if the queue is not empty.
			// The request stays PENDING in the store for another worker.
			if p.closing() {
				return
			}
			if err := p.Process(ctx, id); err != nil {
				// The request stays in the store; a resume or resubmission
				// dispatches it again.
				p.log.ErrorContext(ctx, "processing request", slog.String("request_id", id), slog.Any("error", err))
			}
		}
	}
}

// dispatch hands a request to the pool's workers through its queue if
// there is room, and reports whether it did.
func (p *Processor) dispatch(requestID string) bool {
	held, _ := p.queue.reserve()
	if held {
		p.queue.push(requestID)
	}
	return held
}

// Shutdown stops the pool like http.Server.Shutdown: at once, nothing new
// is claimed (a Router sharing its Queue only stores new requests, for a
// sweep to run later; queued requests that have not started stay PENDING
// in the store), and Shutdown waits for running handlers to finish, their
// progress and results still flowing to clients. When ctx ends first, it
// cancels the handlers' contexts, waits for them to return, and returns
// ctx.Err(); each request cut short is put back in the queue without using
// up one of its attempts, with one WARN line per request. Handlers must
// honour their context. Calling Shutdown again waits the same way; it is
// safe concurrently.
func (p *Processor) Shutdown(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		close(p.stop)
		if p.started {
			p.queue.workers.Add(-1)
		}
		if p.watching.Swap(false) {
			p.queue.watchers.Add(-1)
		}
		if p.endSweeps != nil {
			p.endSweeps()
		}
		p.mu.Unlock()
	})
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		force := p.force
		p.mu.Unlock()
		if force != nil {
			force()
		}
		<-done
		return ctx.Err()
	}
}
