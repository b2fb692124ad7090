package channel

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
)

// DefaultQueueLength is how many publications may wait for their fan-out
// per channel before publishers are made to wait, then refused.
const DefaultQueueLength = 1024

// DefaultPublishWait is how long a publication waits for room in its
// channel's queue before it is refused with ErrOverloaded.
const DefaultPublishWait = 2 * time.Second

// fanout delivers each channel's messages (publications, joins and leaves,
// already encoded) in the order they were queued, on a goroutine per busy
// channel (started on demand, gone when the channel's queue is empty).
// Each round takes everything the channel has queued, lists the
// subscribers once and sends the messages to each in as few posts as the
// frame size allows (see pack), so a channel that publishes faster than
// one post per subscriber per publication coalesces instead of falling
// behind. A slow subscriber delays only its channel's later rounds, and
// channels proceed in parallel.
//
// The queue of publications is bounded: a publisher reserves its place
// before the publication is stored and waits for room, so nothing that
// was acknowledged is ever dropped from the queue (see reserve).
type fanout struct {
	max     int
	wait    time.Duration
	log     *slog.Logger
	deliver func(ctx context.Context, key string, msgs []queued)

	stopCtx context.Context // cancelled when Shutdown's deadline passes
	stop    context.CancelFunc

	mu      sync.Mutex
	queues  map[string]*chanQueue
	pending int // queued plus running messages
	// reserved counts the reservations of every channel: publications
	// being stored, whose message is still to be queued. Flush and
	// Shutdown wait for them too, so no publication is acknowledged after
	// its fan-out could no longer start.
	reserved int
	idle     []chan struct{} // Flush waiters, closed when pending and reserved are 0
	closed   bool

	workers sync.WaitGroup
}

// queued is one message waiting for its channel's next round.
type queued struct {
	ctx  context.Context // the publisher's, for its values only
	data []byte
	pub  bool // a publication (not a presence event)
}

// chanQueue is one channel's state in the fanout.
type chanQueue struct {
	msgs     []queued
	reserved int  // publications between reserve and enqueue or release
	counted  int  // publications among msgs (presence events do not count)
	running  bool // a worker is draining msgs
	// room is closed (and replaced) whenever a round takes messages, to
	// wake publishers waiting for room.
	room chan struct{}
}

func newFanout(max int, wait time.Duration, log *slog.Logger, deliver func(context.Context, string, []queued)) *fanout {
	f := &fanout{max: max, wait: wait, log: log, deliver: deliver, queues: map[string]*chanQueue{}}
	// The stop context belongs to the fanout, not to any caller: queued
	// deliveries outlive the publish call that queued them.
	f.stopCtx, f.stop = context.WithCancel(context.Background())
	return f
}

// queue returns key's queue, creating it; f.mu is held.
func (f *fanout) queue(key string) *chanQueue {
	q := f.queues[key]
	if q == nil {
		q = &chanQueue{room: make(chan struct{})}
		f.queues[key] = q
	}
	return q
}

// reserve takes a place in key's queue for one publication, waiting up to
// f.wait for room. It fails with ErrClosed after Shutdown, ErrOverloaded
// when no room came in time, or ctx's error. A reservation is ended by
// enqueue (with the message) or release (when the publication failed).
func (f *fanout) reserve(ctx context.Context, key string) error {
	var timeout <-chan time.Time
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return ErrClosed
		}
		q := f.queue(key)
		if q.reserved+q.counted < f.max {
			q.reserved++
			f.reserved++
			f.mu.Unlock()
			return nil
		}
		room := q.room
		f.mu.Unlock()
		if timeout == nil {
			if f.wait <= 0 {
				return f.overloaded(ctx, key)
			}
			t := time.NewTimer(f.wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-room:
		case <-timeout:
			return f.overloaded(ctx, key)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fanout) overloaded(ctx context.Context, key string) error {
	f.log.WarnContext(ctx, "channel: publication refused: fan-out queue full", slog.String("channel", key), slog.Int("queued", f.max))
	return &OverloadedError{RetryAfter: f.retryAfter()}
}

// retryAfter is the hint given to refused publishers.
func (f *fanout) retryAfter() time.Duration {
	return max(f.wait/2, 100*time.Millisecond)
}

// release ends a reservation whose publication was not stored.
func (f *fanout) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queues[key]
	q.reserved--
	f.reserved--
	f.dropIfIdle(key, q)
	f.wakeIdle()
}

// wakeIdle releases the Flush waiters once nothing is pending or
// reserved; f.mu is held.
func (f *fanout) wakeIdle() {
	if f.pending != 0 || f.reserved != 0 {
		return
	}
	for _, ch := range f.idle {
		close(ch)
	}
	f.idle = nil
}

// enqueue queues an encoded message for key. counted says it ends a
// reservation (a publication); presence events are queued without one,
// since refusing a subscribe or a disconnect for a busy channel would
// help nobody. It never blocks, and after Shutdown it drops the message
// with a warning (Shutdown refuses publications first, so only presence
// events of connections closing during shutdown can be dropped).
func (f *fanout) enqueue(ctx context.Context, key string, data []byte, counted bool) {
	f.mu.Lock()
	q := f.queue(key)
	if counted {
		q.reserved--
		f.reserved--
	} else if f.closed {
		f.dropIfIdle(key, q)
		f.mu.Unlock()
		f.log.WarnContext(ctx, "channel: presence event dropped: shutting down", slog.String("channel", key))
		return
	}
	q.msgs = append(q.msgs, queued{ctx: ctx, data: data, pub: counted})
	if counted {
		q.counted++
	}
	f.pending++
	if !q.running {
		q.running = true
		f.workers.Go(func() { f.work(key, q) })
	}
	f.mu.Unlock()
}

// dropIfIdle forgets an empty queue; f.mu is held.
func (f *fanout) dropIfIdle(key string, q *chanQueue) {
	if !q.running && len(q.msgs) == 0 && q.reserved == 0 {
		delete(f.queues, key)
	}
}

// work runs one channel's rounds until its queue is empty.
func (f *fanout) work(key string, q *chanQueue) {
	for {
		f.mu.Lock()
		msgs := q.msgs
		if len(msgs) == 0 {
			q.running = false
			f.dropIfIdle(key, q)
			f.mu.Unlock()
			return
		}
		q.msgs = nil
		q.counted = 0
		close(q.room)
		q.room = make(chan struct{})
		f.mu.Unlock()

		ctx, cancel := context.WithCancel(context.WithoutCancel(msgs[0].ctx))
		stopAfter := context.AfterFunc(f.stopCtx, cancel)
		f.deliver(ctx, key, msgs)
		stopAfter()
		cancel()

		f.mu.Lock()
		f.pending -= len(msgs)
		f.wakeIdle()
		f.mu.Unlock()
	}
}

func (f *fanout) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// flush waits until nothing is pending or reserved.
func (f *fanout) flush(ctx context.Context) error {
	f.mu.Lock()
	if f.pending == 0 && f.reserved == 0 {
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
