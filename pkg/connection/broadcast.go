package connection

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// Broadcast delivers message to every distinct ID in connectionIDs. It
// encodes the message once, reads the route of every ID it has not read
// before in one batched store read (store.RoutesGetter, else one lookup
// per ID; a connection's endpoint never changes, so the Manager remembers
// it until the connection is gone) and posts each ID to the endpoint its
// record names, so connections of other runtimes,
// stages, APIs or Regions sharing the store are reached where they live;
// at most WithBroadcastWorkers requests per endpoint are in flight at
// once. Each ID's circuit breaker is honoured and each ID is retried as
// the RetryPolicy says, but a retry waiting for its backoff holds no
// worker: it is re-queued when its delay has passed while the workers keep
// sending. A 410 from a connection's own endpoint removes its record. An
// ID with no record is posted through the manager's endpoint (a 410 there
// is ErrConnectionStale, with nothing to remove); when the route read
// fails, the IDs it left unknown are posted through the manager's
// endpoint too, and a 410 for them removes nothing and fails with
// ErrNotOwnEndpoint, since only a connection's own endpoint may declare it
// gone. Broadcast does not refresh LastPing (that would be a store write
// per ID); Send does.
//
// Broadcast returns nil if every ID was delivered, else a *BroadcastError
// naming each failed ID and its cause. If ctx ends (or Shutdown's
// deadline passes) it stops promptly and reports the IDs not delivered
// with the context's error; that includes the IDs whose attempt was in
// flight and was abandoned, which the gateway may have delivered. Each ID
// is delivered at most once per call, except that an attempt that timed
// out may have been delivered before it is retried (see the package
// documentation).
func (m *Manager) Broadcast(ctx context.Context, connectionIDs []string, message any) error {
	data, err := Encode(message)
	if err != nil {
		return err
	}
	ids := distinct(connectionIDs)
	if len(ids) == 0 {
		return nil
	}
	u, err := m.life.begin(ctx, false, false)
	if err != nil {
		return err
	}
	defer u.done()
	ctx = u.ctx
	m.metrics.activeBroadcasts.Add(1)
	defer m.metrics.activeBroadcasts.Add(-1)
	m.metrics.broadcasts.Add(1)

	start := m.cfg.clock.Now()
	var failed map[string]error
	groups := m.routeGroups(ctx, ids)
	if len(groups) == 1 {
		failed = m.broadcast(ctx, groups[0], data)
	} else {
		failed = map[string]error{}
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		for _, g := range groups {
			wg.Go(func() {
				f := m.broadcast(ctx, g, data)
				mu.Lock()
				maps.Copy(failed, f)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	m.metrics.broadcastLatency.Record(m.cfg.clock.Now().Sub(start).Microseconds())
	m.log(ctx, slog.LevelDebug, "connection: broadcast done",
		slog.Int("total", len(ids)), slog.Int("failed", len(failed)))
	if len(failed) == 0 {
		return nil
	}
	return &BroadcastError{Total: len(ids), Failed: failed}
}

// distinct returns ids without duplicates, in first-seen order.
func distinct(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}

// delivery is one ID's progress through a Broadcast.
type delivery struct {
	id       string
	t        ticket
	attempts int
	due      time.Time // when a waiting retry may go
	index    int       // in the retry heap, while waiting
	parked   bool      // waiting for the Limiter to lower its rate too
	listed   bool      // in the scheduler's list of parked retries
	epoch    uint64    // the Limiter's epoch of the last attempt
	k        kind      // outcome of the last attempt
	err      error
}

// retryHeap orders waiting retries by due time.
type retryHeap []*delivery

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *retryHeap) Push(x any) {
	d := x.(*delivery)
	d.index = len(*h)
	*h = append(*h, d)
}
func (h *retryHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return d
}

// broadcast is the scheduler. Workers only ever make one attempt and hand
// the delivery back; this goroutine decides what happens next, keeps the
// retries that wait for their backoff in a heap, and wakes up for the
// earliest with a single timer. So a slow retry costs a heap entry, not a
// worker, and the workers keep sending fresh IDs meanwhile; a worker that
// slept through a backoff would hold its slot and make a faulted
// Broadcast many times slower than a clean one. A throttled retry is also
// parked until the adaptive Limiter lowers its rate below the one it was
// throttled at, and then goes at once (its worker waits for a token at
// the new rate); its backoff only bounds the wait, for one connection
// answering 429 alone, which lowers nothing.
func (m *Manager) broadcast(ctx context.Context, g routeGroup, data []byte) map[string]error {
	ids := g.ids
	t := m.clients.forEndpoint(g.endpoint)
	hash := t.prepare(data) // once per message, not once per ID
	workers := min(m.cfg.workers, len(ids))
	// Buffered, so that a worker finishing an attempt finds its next
	// delivery queued instead of parking until the scheduler runs: a
	// handoff through an unbuffered channel wakes a goroutine per ID and
	// costs the lean client ~10 % of its fan-out rate. At cancellation the
	// queued deliveries fail fast on the done context (none is sent).
	jobs := make(chan *delivery, workers)
	results := make(chan *delivery, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d := range jobs {
				m.broadcastAttempt(ctx, t, data, hash, g.trust, d)
				results <- d
			}
		})
	}

	failed := map[string]error{}
	finish := func(d *delivery) {
		m.conns.record(d.id, d.t, d.k, time.Time{})
		m.metrics.outcome(d.k)
		if d.k != kindOK {
			failed[d.id] = d.err
		}
	}
	var (
		fresh     = 0         // next index of ids not yet started
		ready     []*delivery // retries whose delay has passed
		waiting   retryHeap
		timer     <-chan time.Time
		timerDue  time.Time
		parked    []*delivery     // in waiting, and waiting for the Limiter too (and some no longer)
		nParked   = 0             // of parked, those still parked
		lowered   <-chan struct{} // closed when the Limiter lowers its rate
		inFlight  = 0
		remaining = len(ids)
	)
	// release moves the parked retries whose epoch is over to ready, and
	// watches the epoch of the others; it also drops from parked those
	// whose backoff passed first.
	release := func() {
		lowered = nil
		epoch := m.pace.epochNow()
		kept := parked[:0]
		for _, d := range parked {
			switch {
			case !d.parked:
				d.listed = false
			case d.epoch != epoch:
				d.parked, d.listed = false, false
				nParked--
				heap.Remove(&waiting, d.index)
				ready = append(ready, d)
			default:
				kept = append(kept, d)
			}
		}
		clear(parked[len(kept):])
		parked = kept
		if len(parked) > 0 {
			lowered = m.pace.lowered(epoch)
		}
	}
	arm := func() {
		if len(waiting) == 0 {
			timer = nil
			return
		}
		if due := waiting[0].due; timer == nil || due.Before(timerDue) {
			timerDue = due
			timer = m.cfg.clock.After(due.Sub(m.cfg.clock.Now()))
		}
	}
	// next picks the delivery to hand a worker, if any: a retry whose
	// delay has passed, else the next fresh ID. Fresh IDs whose breaker is
	// open (or that are empty) fail at once, with no request.
	next := func() (d *delivery, retry bool) {
		if len(ready) > 0 {
			return ready[0], true
		}
		for ; fresh < len(ids); fresh++ {
			id := ids[fresh]
			if id == "" {
				finish(&delivery{id: id, k: kindNotFound, err: fmt.Errorf("%w: empty connection ID: %w", ErrConnectionNotFound, store.ErrNotFound)})
				remaining--
				continue
			}
			t, ok := m.conns.allow(id, time.Time{})
			if !ok {
				finish(&delivery{id: id, t: t, k: kindCircuitOpen, err: fmt.Errorf("%w: %s", ErrCircuitOpen, id)})
				remaining--
				continue
			}
			return &delivery{id: id, t: t}, false
		}
		return nil, false
	}

	var (
		cancelled    bool
		pending      *delivery // chosen by next, not yet taken by a worker
		pendingRetry bool
	)
loop:
	for remaining > 0 {
		if pending == nil {
			pending, pendingRetry = next()
			if remaining == 0 {
				break
			}
		}
		var send chan *delivery
		if pending != nil {
			send = jobs
		}
		select {
		case send <- pending:
			if pendingRetry {
				ready[0] = nil
				ready = ready[1:]
			} else {
				fresh++
			}
			pending = nil
			inFlight++
		case d := <-results:
			inFlight--
			if d.k.retryable() && d.attempts <= m.cfg.retry.MaxRetries {
				m.metrics.retries.Add(1)
				delay := m.retryDelay(d.attempts - 1)
				if m.paceRetry(d.k) && delay > 0 {
					select {
					case <-m.pace.lowered(d.epoch):
						delay = 0 // lowered since the attempt went out
					default:
						d.parked = true
						nParked++
						if !d.listed {
							d.listed = true
							parked = append(parked, d)
						}
						if lowered == nil {
							lowered = m.pace.lowered(d.epoch)
						}
					}
				}
				if delay <= 0 {
					ready = append(ready, d)
					continue
				}
				d.due = m.cfg.clock.Now().Add(delay)
				heap.Push(&waiting, d)
				arm()
				continue
			}
			d.err = wrapPostError(d.k, d.id, d.attempts, d.err)
			finish(d)
			remaining--
		case <-timer:
			timer = nil
			now := m.cfg.clock.Now()
			for len(waiting) > 0 && !waiting[0].due.After(now) {
				d := heap.Pop(&waiting).(*delivery)
				if d.parked {
					d.parked = false
					nParked--
				}
				ready = append(ready, d)
			}
			if len(parked) > 2*nParked+64 {
				release() // one connection's 429s lower nothing: forget them
			}
			arm()
		case <-lowered:
			release()
		case <-ctx.Done():
			cancelled = true
			break loop
		}
	}
	close(jobs)
	// Attempts in flight end promptly once ctx is done; collect them.
	for ; inFlight > 0; inFlight-- {
		d := <-results
		if d.k.retryable() && cancelled {
			d.k, d.err = kindCanceled, ctxError(ctx)
		}
		d.err = wrapPostError(d.k, d.id, d.attempts, d.err)
		finish(d)
	}
	wg.Wait()
	if cancelled {
		// Everything not finished is reported with the context's error:
		// the pending and fresh IDs never went out, and the retries were
		// rejected by the gateway before.
		cause := ctxError(ctx)
		unsent := func(d *delivery) {
			d.k, d.err = kindCanceled, fmt.Errorf("connection: send to %s: %w", d.id, cause)
			finish(d)
		}
		if pending != nil && !pendingRetry {
			unsent(pending)
			fresh++
		}
		for _, d := range ready {
			unsent(d)
		}
		for _, d := range waiting {
			unsent(d)
		}
		for _, id := range ids[fresh:] {
			unsent(&delivery{id: id})
		}
	}
	return failed
}

// broadcastAttempt makes one attempt for d, on a worker.
func (m *Manager) broadcastAttempt(ctx context.Context, t transport, data []byte, hash string, trust routeTrust, d *delivery) {
	d.k, d.epoch, d.err = m.attempt(ctx, d.id, t, data, hash)
	d.attempts++
	if d.k != kindGone {
		return
	}
	switch trust {
	case routeOwn:
		m.removeGone(ctx, d.id)
	case routeNoRecord:
		m.conns.forget(d.id)
	default:
		// Gone from an endpoint that may not be the connection's own: the
		// record stays, and the caller is told this is not a 410 of its
		// own endpoint.
		d.k = kindNotOwn
		d.err = fmt.Errorf("%w: %s: %w", ErrNotOwnEndpoint, d.id, d.err)
	}
}
