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
		n, err := p.Sweep(sctx)
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
