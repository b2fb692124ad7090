package streamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// sweepPage is how many stalled requests a sweep lists per store call.
const sweepPage = 100

// Sweep runs the requests that no delivery will bring to a worker: those
// PENDING for longer than the pending grace ([WithPendingGrace]; their
// dispatch was lost: a full queue, a stopped process, a stream record
// dropped after its retries) and those PROCESSING under an expired lease
// (their worker died). DynamoDB streams fire only on writes, so without a
// sweep such a request would wait for its user to resume it.
//
// Each request goes through Process, up to [WithWorkers] at once, so the
// store's Claim decides who runs it: one that another worker claims
// meanwhile is left alone, which is not an error. Sweep returns how many
// requests it ran. It starts no new request once ctx is done (a Lambda
// deadline), and returns ctx's error then; requests it had started are
// cut short like any other, and go back to PENDING. Otherwise the error is
// the first store failure, after the other requests were run.
func (p *Processor) Sweep(ctx context.Context) (int, error) {
	var (
		ran   atomic.Int64
		wg    sync.WaitGroup
		sem   = make(chan struct{}, p.workers)
		mu    sync.Mutex
		first error
	)
	listErr := p.eachStalled(ctx, func(requestID string) bool {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		wg.Go(func() {
			defer func() { <-sem }()
			did, err := p.process(ctx, requestID)
			if did {
				ran.Add(1)
			}
			if err != nil {
				p.log.ErrorContext(ctx, "sweep: processing request", slog.String("request_id", requestID), slog.Any("error", err))
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
		return true
	})
	wg.Wait()
	n := int(ran.Load())
	if n > 0 {
		p.log.InfoContext(ctx, "sweep ran stalled requests", slog.Int("requests", n))
	}
	return n, errors.Join(listErr, first)
}

// eachStalled lists the stalled requests page by page and calls fn with
// each one's id, once per pass, until fn returns false, ctx ends or the
// list does.
func (p *Processor) eachStalled(ctx context.Context, fn func(requestID string) bool) error {
	pendingBefore := p.now().Add(-p.grace)
	seen := map[string]bool{}
	cursor := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, next, err := p.requests.ListStalled(ctx, pendingBefore, sweepPage, cursor)
		if err != nil {
			return fmt.Errorf("streamer: listing stalled requests: %w", err)
		}
		for _, ar := range page {
			// A request whose state changes during the pass may be listed
			// again; once is enough.
			if seen[ar.RequestID] {
				continue
			}
			seen[ar.RequestID] = true
			p.log.DebugContext(ctx, "stalled request", slog.String("request_id", ar.RequestID),
				slog.String("status", string(ar.Status)), slog.Time("updated_at", ar.UpdatedAt))
			if !fn(ar.RequestID) {
				return ctx.Err()
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// dispatchStalled queues the stalled requests for the pool's workers, as
// the router queues new ones. It stops when the queue is full: the next
// sweep finds the rest.
func (p *Processor) dispatchStalled(ctx context.Context) {
	n := 0
	full := false
	err := p.eachStalled(ctx, func(requestID string) bool {
		if !p.dispatch(requestID) {
			full = true
			return false
		}
		n++
		return true
	})
	switch {
	case err != nil && ctx.Err() == nil:
		p.log.ErrorContext(ctx, "sweep", slog.Any("error", err))
	case n > 0 || full:
		p.log.InfoContext(ctx, "sweep queued stalled requests", slog.Int("requests", n), slog.Bool("queue_full", full))
	}
}
