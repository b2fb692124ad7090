package streamer

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// Why a running handler was stopped by the processor rather than by its
// own end. They are the cancellation causes of the handler's context.
var (
	// errClaimLost: the store refused the claim because someone else owns
	// the outcome: the request was cancelled (the canceller told the
	// client), or another worker took it over after the lease expired.
	errClaimLost = errors.New("streamer: request cancelled or claim lost")
	// errRequestGone: the request's record is gone (deleted, expired, a
	// table restored without it). Nobody else will ever end it, so the
	// processor tells the client.
	errRequestGone = errors.New("streamer: request record vanished")
	// errLeaseExpired: the lease could not be renewed before it ran out
	// (the store was unreachable or too slow). Another worker may take the
	// request over from then on, and this run's outcome would be refused,
	// so the run stops instead of working for nothing.
	errLeaseExpired = errors.New("streamer: lease expired without renewal")
)

// minRenewRetry is the shortest wait before retrying a failed renewal.
const minRenewRetry = 50 * time.Millisecond

// keepLease renews owner's claim on the request every renewEvery until stop is closed.
// claimedAt is when the Claim that granted the lease was sent: the store
// computed the lease's end from a moment no earlier than that, so
// claimedAt+lease is a safe estimate of when another worker may take the
// request over. Each renewal is bounded by that end, so a store that hangs
// (a paused server, a failover) cannot keep the handler running past it.
// A failed renewal is retried sooner and logged at WARN with the count of
// failures so far. cancel stops the handler with the cause: errClaimLost,
// errRequestGone or errLeaseExpired.
//
// valid holds the lease's known end (Unix nanoseconds) for the run's sends:
// keepLease moves it on each renewal.
func (p *Processor) keepLease(ctx context.Context, log *slog.Logger, requestID, owner string, claimedAt time.Time, stop <-chan struct{}, cancel context.CancelCauseFunc, valid *atomic.Int64) {
	validUntil := claimedAt.Add(p.lease)
	valid.Store(validUntil.UnixNano())
	retry := max(p.renewEvery/4, minRenewRetry)
	next := time.Now().Add(p.renewEvery)
	failures := 0
	t := time.NewTimer(time.Until(earlier(next, validUntil)))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !time.Now().Before(validUntil) {
			log.WarnContext(ctx, "lease expired without renewal; stopping the handler so another worker can run the request",
				slog.Int("failed_renewals", failures), slog.Time("lease_until", validUntil))
			cancel(errLeaseExpired)
			return
		}
		sent := time.Now()
		rctx, cancelCall := context.WithDeadline(ctx, validUntil)
		err := p.requests.RenewLease(rctx, requestID, owner, p.lease)
		cancelCall()
		switch {
		case err == nil:
			validUntil = sent.Add(p.lease)
			valid.Store(validUntil.UnixNano())
			next = time.Now().Add(p.renewEvery)
			if failures > 0 {
				log.InfoContext(ctx, "lease renewed again", slog.Int("failed_renewals", failures))
				failures = 0
			}
		case errors.Is(err, store.ErrNotFound):
			cancel(errRequestGone)
			return
		case errors.Is(err, store.ErrConflict):
			cancel(errClaimLost)
			return
		case ctx.Err() != nil:
			return
		default:
			failures++
			log.WarnContext(ctx, "renewing lease failed", slog.Int("failed_renewals", failures),
				slog.Time("lease_until", validUntil), slog.Any("error", err))
			next = time.Now().Add(retry)
		}
		t.Reset(max(time.Until(earlier(next, validUntil)), 0))
	}
}

// earlier returns the earlier of two times.
func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
