package streamer

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
)

const msgRequestLost = "the server lost this request's record; submit it again"

// Bounds of what the pool remembers for recovery. Beyond them it relies
// on its periodic sweep.
const (
	// maxRecoveryEntries bounds each of the two recovery maps.
	maxRecoveryEntries = 10_000
	// leaseEndMargin is how long after a lease's known end the pool looks
	// again: clocks of workers sharing a store are close, not equal.
	leaseEndMargin = 100 * time.Millisecond
	// orphanRecheck is how often the pool asks the store about requests
	// whose outcome it could not write, while there are any.
	orphanRecheck = time.Second
	// recoveryReadTimeout bounds one store read of the recovery loop.
	recoveryReadTimeout = 2 * time.Second
	// minDueSweepGap is the least time between two full sweeps triggered
	// by lease ends (periodic sweeps are not limited by it).
	minDueSweepGap = time.Second
	// firstRedelivery is the wait before a final message that failed to go
	// out is sent again; each further try waits twice as long, up to
	// maxRedeliveries tries (about a minute in all).
	firstRedelivery = time.Second
	maxRedeliveries = 6
)

// recovery is the pool's memory of work that may need it, besides the
// lease ends its Queue keeps (requests running under another worker's
// lease that a client is waiting for: it resumed or resubmitted them; if
// that worker died, its lease ends at the given time, and the pool looks
// again then, instead of at its next periodic sweep, which is how a
// restarted process takes over within the lease after a crash):
//
//   - orphans: requests this pool ran whose end it could not write (the
//     store was unreachable). When the store answers again, the pool finds
//     out what happened: gone (the client gets protocol.CodeRequestLost), its write
//     landed after all (the client gets the outcome), or still needing work
//     (queued again).
//   - undelivered: final messages whose send failed for a reason that
//     says nothing about the client's connection (a send or a store read
//     timed out on a loaded machine, an endpoint did not answer). The
//     client's socket may be fine, and a client that is still connected
//     has no reason to resume, so the pool sends them again.
type recovery struct {
	mu          sync.Mutex
	orphans     map[string]*store.AsyncRequest
	undelivered map[string]*redelivery
	wake        chan struct{} // capacity 1: a change for the loop to see
}

// redelivery is a final message to send again at a given time.
type redelivery struct {
	ar      *store.AsyncRequest // the request, with the connection its messages go to
	message any
	tries   int // sends after the first that failed
	at      time.Time
}

func newRecovery() recovery {
	return recovery{orphans: map[string]*store.AsyncRequest{},
		undelivered: map[string]*redelivery{}, wake: make(chan struct{}, 1)}
}

func (r *recovery) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// orphan remembers a claimed request whose outcome could not be written.
func (p *Processor) orphan(ar *store.AsyncRequest) {
	if !p.watching.Load() {
		return
	}
	p.rec.mu.Lock()
	if len(p.rec.orphans) < maxRecoveryEntries {
		p.rec.orphans[ar.RequestID] = ar
	}
	p.rec.mu.Unlock()
	p.rec.poke()
}

// redeliverLater asks the pool to send a request's final message again,
// tries being how often it was sent again already. Without a running pool
// recovery loop (Lambda, or the periodic sweep turned off), or once the
// tries are used up, the outcome waits in the record for the client's
// resume.
func (p *Processor) redeliverLater(ctx context.Context, log *slog.Logger, ar *store.AsyncRequest, message any, tries int, cause error) {
	if !p.watching.Load() || tries >= maxRedeliveries {
		log.WarnContext(ctx, "final message not delivered; the outcome waits for the client's resume",
			slog.Int("redeliveries", tries), slog.Any("error", cause))
		return
	}
	wait := firstRedelivery << tries
	p.rec.mu.Lock()
	if len(p.rec.undelivered) < maxRecoveryEntries {
		p.rec.undelivered[ar.RequestID] = &redelivery{ar: ar, message: message, tries: tries, at: time.Now().Add(wait)}
	}
	p.rec.mu.Unlock()
	p.rec.poke()
	log.InfoContext(ctx, "final message to be sent again", slog.Duration("in", wait), slog.Int("redeliveries", tries))
}

// dueRedeliveries removes and returns the final messages due to be sent
// again by now, and the earliest time of those still ahead.
func (p *Processor) dueRedeliveries(now time.Time) (due []*redelivery, next time.Time) {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	for id, d := range p.rec.undelivered {
		if !now.Before(d.at) {
			due = append(due, d)
			delete(p.rec.undelivered, id)
		} else if next.IsZero() || d.at.Before(next) {
			next = d.at
		}
	}
	slices.SortFunc(due, func(a, b *redelivery) int { return strings.Compare(a.ar.RequestID, b.ar.RequestID) })
	return due, next
}

// nextRedelivery is when the earliest final message waiting to be sent
// again is due; zero if none is.
func (p *Processor) nextRedelivery() (next time.Time) {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	for _, d := range p.rec.undelivered {
		if next.IsZero() || d.at.Before(next) {
			next = d.at
		}
	}
	return next
}

// redeliver sends each due final message again, up to the pool's number
// of workers at once, to the connection the request's record names now (a
// client that resumed elsewhere meanwhile is followed), or to the user's
// other live connections.
func (p *Processor) redeliver(ctx context.Context, due []*redelivery) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.workers)
	for _, d := range due {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			p.redeliverOne(ctx, d)
		})
	}
	wg.Wait()
}

// redeliverOne sends one final message again.
func (p *Processor) redeliverOne(ctx context.Context, d *redelivery) {
	log := p.log.With(slog.String("request_id", d.ar.RequestID), slog.Int("attempt", attemptOf(d.ar)))
	to := newTarget(p, d.ar)
	rctx, cancel := context.WithTimeout(ctx, recoveryReadTimeout)
	cur, err := p.requests.GetRequest(rctx, d.ar.RequestID)
	cancel()
	if err == nil {
		to.follow(cur)
	}
	if err := sendFinal(ctx, log, to, d.message); retriable(err) {
		p.redeliverLater(ctx, log, to.current(), d.message, d.tries+1, err)
	} else if err == nil {
		log.InfoContext(ctx, "final message delivered on a later try", slog.Int("redeliveries", d.tries+1))
	}
}

func (p *Processor) hasOrphans() bool {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	return len(p.rec.orphans) > 0
}

// sweepLoop is the pool's recovery loop: a full sweep at Start and every
// sweepEvery; the watched requests at their lease's end (and a full sweep
// then, since a dead worker's other requests end their leases about as
// well); the orphans every orphanRecheck while there are any. It feeds
// requests to the pool's workers rather than running them itself, so the
// pool's bounds hold.
func (p *Processor) sweepLoop(ctx context.Context) {
	defer p.wg.Done()
	nextSweep := time.Now()
	var lastSweep, nextOrphans time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		now := time.Now()
		due, nextDue := p.queue.dueLeaseEnds(now)
		if !now.Before(nextSweep) || (len(due) > 0 && now.Sub(lastSweep) >= minDueSweepGap) {
			p.dispatchStalled(ctx)
			lastSweep = now
			if !now.Before(nextSweep) {
				nextSweep = now.Add(p.sweepEvery)
			}
		}
		if len(due) > 0 {
			p.lookAgain(ctx, due)
		}
		orphans := p.hasOrphans()
		if orphans && !now.Before(nextOrphans) {
			p.recheckOrphans(ctx)
			nextOrphans = time.Now().Add(orphanRecheck)
		}
		resend, nextResend := p.dueRedeliveries(now)
		p.redeliver(ctx, resend)
		wake := nextSweep
		if !nextDue.IsZero() {
			wake = earlier(wake, nextDue)
		}
		if len(resend) > 0 {
			// The sends took time, and may have scheduled more.
			nextResend = p.nextRedelivery()
		}
		if !nextResend.IsZero() {
			wake = earlier(wake, nextResend)
		}
		if orphans {
			wake = earlier(wake, nextOrphans)
		}
		t.Reset(max(time.Until(wake), 0))
		select {
		case <-ctx.Done():
			return
		case <-p.stop:
			return
		case <-t.C:
		case <-p.rec.wake:
		case <-p.queue.wake:
		}
	}
}

// lookAgain reads each request whose watched lease ended: one that needs
// work is queued (the claim takes it over), one whose lease was renewed
// meanwhile is watched until its new end, anything else is left alone.
func (p *Processor) lookAgain(ctx context.Context, ids []string) {
	for _, id := range ids {
		rctx, cancel := context.WithTimeout(ctx, recoveryReadTimeout)
		ar, err := p.requests.GetRequest(rctx, id)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			// The store is not answering; the periodic sweep will.
			p.log.WarnContext(ctx, "reading a request whose lease ended", slog.String("request_id", id), slog.Any("error", err))
			continue
		case needsWork(ar, p.now()):
			p.log.InfoContext(ctx, "lease ended; taking the request over", slog.String("request_id", id),
				slog.String("previous_owner", ar.LeaseOwner), slog.Time("lease_until", ar.LeaseUntil))
			p.dispatch(id)
		default:
			p.queue.expectLeaseEnd(ar)
		}
	}
}

// recheckOrphans asks the store what became of each orphan.
func (p *Processor) recheckOrphans(ctx context.Context) {
	p.rec.mu.Lock()
	orphans := slices.Collect(maps.Values(p.rec.orphans))
	p.rec.mu.Unlock()
	for _, ar := range orphans {
		log := p.log.With(slog.String("request_id", ar.RequestID), slog.Int("attempt", attemptOf(ar)))
		rctx, cancel := context.WithTimeout(ctx, recoveryReadTimeout)
		cur, err := p.requests.GetRequest(rctx, ar.RequestID)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			log.DebugContext(ctx, "store still not answering about a request whose outcome is unknown", slog.Any("error", err))
			continue
		}
		if err == nil && cur.Status == store.StatusProcessing && cur.LeaseOwner == ar.LeaseOwner && !needsWork(cur, p.now()) {
			// Still under this run's own lease: nothing has happened yet.
			// Look again until the lease ends (then it needs work) or the
			// record vanishes.
			continue
		}
		p.rec.mu.Lock()
		delete(p.rec.orphans, ar.RequestID)
		p.rec.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, finalWriteTimeout)
		switch {
		case err != nil: // ErrNotFound
			p.lost(wctx, log, newTarget(p, ar), ar)
		case cur.Status.Terminal() && cur.Status != store.StatusCancelled && cur.Attempts == ar.Attempts:
			// This run's own final write landed although its call failed:
			// nobody has told the client.
			log.InfoContext(ctx, "an outcome written during a store outage is delivered now", slog.String("status", string(cur.Status)))
			deliver(wctx, log, newTarget(p, cur), stateMessage(cur))
		case needsWork(cur, p.now()):
			p.dispatch(cur.RequestID)
		default:
			// Another worker runs or ended it, or it was cancelled.
			p.queue.expectLeaseEnd(cur)
		}
		cancel()
	}
}

// lost ends a request whose record vanished: the one case in which nobody
// else will tell the client.
func (p *Processor) lost(ctx context.Context, log *slog.Logger, to *target, ar *store.AsyncRequest) {
	log.WarnContext(ctx, "request record vanished from the store; sending the client "+string(protocol.CodeRequestLost))
	deliver(ctx, log, to, protocol.NewError(ar.RequestID, protocol.CodeRequestLost, msgRequestLost))
}
