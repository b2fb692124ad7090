package channel

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/streamer-go/streamer/pkg/connection"
)

// DefaultQueueLength is how many fan-outs may wait per channel.
const DefaultQueueLength = 1024

// fanout runs each channel's deliveries one after another, in the order
// they were queued, on a goroutine per busy channel (started on demand,
// gone when the channel's queue is empty). So one process delivers a
// channel's publications in offset order, a slow subscriber delays only
// its channel's later deliveries and never the publisher, and channels
// proceed in parallel. Broadcast itself sends to the subscribers in
// parallel.
type fanout struct {
	max int
	log *slog.Logger

	stopCtx context.Context // cancelled when Shutdown's deadline passes
	stop    context.CancelFunc

	mu      sync.Mutex
	queues  map[string][]job // key present: its worker is running
	pending int              // queued plus running jobs
	idle    []chan struct{}  // Flush waiters, closed when pending is 0
	closed  bool

	workers sync.WaitGroup
}

type job struct {
	ctx context.Context // the publisher's, for its values only
	run func(ctx context.Context)
}

func newFanout(max int, log *slog.Logger) *fanout {
	f := &fanout{max: max, log: log, queues: map[string][]job{}}
	// The stop context belongs to the fanout, not to any caller: queued
	// deliveries outlive the publish call that queued them.
	f.stopCtx, f.stop = context.WithCancel(context.Background())
	return f
}

func (f *fanout) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// enqueue queues run for the channel key; it never blocks.
func (f *fanout) enqueue(ctx context.Context, key string, run func(context.Context)) {
	f.mu.Lock()
	closed := f.closed
	q, running := f.queues[key]
	full := len(q) >= f.max
	if !closed && !full {
		f.queues[key] = append(q, job{ctx: ctx, run: run})
		f.pending++
		if !running {
			f.workers.Go(func() { f.work(key) })
		}
	}
	f.mu.Unlock()
	// Logged after unlocking: the logger's handler is the app's code.
	switch {
	case closed:
		f.log.WarnContext(ctx, "channel: fan-out dropped: shutting down", slog.String("channel", key))
	case full:
		f.log.WarnContext(ctx, "channel: fan-out dropped: queue full; subscribers recover from history", slog.String("channel", key), slog.Int("queued", len(q)))
	}
}

// work drains one channel's queue.
func (f *fanout) work(key string) {
	for {
		f.mu.Lock()
		q := f.queues[key]
		if len(q) == 0 {
			delete(f.queues, key)
			f.mu.Unlock()
			return
		}
		j := q[0]
		q[0] = job{}
		f.queues[key] = q[1:]
		f.mu.Unlock()

		ctx, cancel := context.WithCancel(context.WithoutCancel(j.ctx))
		stopAfter := context.AfterFunc(f.stopCtx, cancel)
		j.run(ctx)
		stopAfter()
		cancel()

		f.mu.Lock()
		f.pending--
		if f.pending == 0 {
			for _, ch := range f.idle {
				close(ch)
			}
			f.idle = nil
		}
		f.mu.Unlock()
	}
}

// flush waits for pending to reach 0.
func (f *fanout) flush(ctx context.Context) error {
	f.mu.Lock()
	if f.pending == 0 {
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	f.idle = append(f.idle, ch)
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fanout) shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	err := f.flush(ctx)
	// At the deadline, cancel what still runs; the queued rest then ends
	// at once, so waiting for the workers is short.
	f.stop()
	f.workers.Wait()
	return err
}

// isGone reports whether a delivery failure means the connection is gone:
// 410 from the gateway, or (through SendEach) no connection record left.
func isGone(err error) bool {
	return errors.Is(err, connection.ErrConnectionStale) || errors.Is(err, connection.ErrConnectionNotFound)
}
