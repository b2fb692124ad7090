package awslambda

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/pkg/streamer"
)

// MaxSweepReserve caps the time a sweep, or a stream batch (see
// [StreamHandler]), leaves unused at the end of its invocation: requests still running then are cut short and put back in
// the queue, and the Flusher runs, before Lambda stops the process. The
// reserve is a quarter of the invocation's remaining time, at most this.
const MaxSweepReserve = 10 * time.Second

// withReserve returns ctx with its deadline moved earlier by the reserve
// (a quarter of the remaining time, at most MaxSweepReserve), so that work
// cut short at the returned deadline can still be put back in the queue,
// and the Flusher run, before Lambda stops the process. Without a
// deadline, ctx is returned as is.
func withReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	reserve := min(time.Until(deadline)/4, MaxSweepReserve)
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

// WithSweepRepeat makes each invocation of the sweep function sweep again
// every `every` for `window` (bounded by the invocation's deadline less its
// reserve), rather than once. EventBridge schedules fire at most once a
// minute, so a single sweep per invocation takes a request over up to a
// minute after its dead worker's lease ends; with rate(1 minute),
// WithSweepRepeat(5*time.Second, 50*time.Second) brings that down to about
// 5 s (the lease plus 5 s after the crash), for one function running about
// 50 s a minute. Sweeps run one after another: a sweep that runs a
// taken-over handler for long delays the next one (the next scheduled
// invocation still sweeps). every <= 0 or window <= 0 keeps one sweep.
func WithSweepRepeat(every, window time.Duration) Option {
	return func(c *config) {
		if every > 0 && window > 0 {
			c.sweepEvery, c.sweepFor = every, window
		}
	}
}

// SweepResult is what the sweep function answers, visible in the
// invocation's result (`aws lambda invoke` prints it).
type SweepResult struct {
	// Ran is how many stalled requests the sweep ran.
	Ran int `json:"ran"`
}

// SweepHandler returns the handler of a scheduled function (an EventBridge
// rule or EventBridge Scheduler schedule such as rate(1 minute)) that runs
// p.Sweep. DynamoDB streams fire only on writes, so without it a request
// whose stream record was dropped after its retries, or whose worker died
// mid-run (a function that timed out holding the lease), would stay
// PENDING or PROCESSING until its user resumed it. The event's content is
// not used: every invocation sweeps.
//
// The sweep starts no request in the invocation's last moments (see
// [MaxSweepReserve]) and flushes the Flusher before returning. Running
// out of time is not an error: the next scheduled sweep carries on. A
// store failure is returned, so it shows in the function's error metrics.
func SweepHandler(p *streamer.Processor, opts ...Option) func(ctx context.Context, ev events.EventBridgeEvent) (SweepResult, error) {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.EventBridgeEvent) (SweepResult, error) {
		defer cfg.flush(ctx)
		sctx, cancel := withReserve(ctx)
		defer cancel()
		log := cfg.log.With(slog.String("event_id", ev.ID), slog.String("detail_type", ev.DetailType))
		n, err := sweepRepeatedly(sctx, p, cfg.sweepEvery, cfg.sweepFor)
		switch {
		case err != nil && sctx.Err() != nil && ctx.Err() == nil:
			log.WarnContext(ctx, "sweep stopped at its time limit; the next one carries on", slog.Int("requests", n), slog.Any("error", err))
			return SweepResult{Ran: n}, nil
		case err != nil:
			log.ErrorContext(ctx, "sweep failed", slog.Int("requests", n), slog.Any("error", err))
			return SweepResult{Ran: n}, err
		}
		log.InfoContext(ctx, "sweep done", slog.Int("requests", n))
		return SweepResult{Ran: n}, nil
	}
}

// sweepRepeatedly runs p.Sweep, then again every `every` until `window` has
// passed since the start or ctx ends; with every <= 0, once. It returns the
// requests run in all, and the first error, which ends the repeats.
func sweepRepeatedly(ctx context.Context, p *streamer.Processor, every, window time.Duration) (int, error) {
	total := 0
	end := time.Now().Add(window)
	for {
		n, err := p.Sweep(ctx)
		total += n
		if err != nil || every <= 0 {
			return total, err
		}
		next := time.Now().Add(every)
		if next.After(end) {
			return total, nil
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return total, nil
		case <-t.C:
		}
	}
}
