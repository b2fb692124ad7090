package awslambda

import (
	"context"
	"log/slog"
	"time"
)

// Flusher waits for background work started during an invocation (such as
// the connection manager's LastPing writes and stale-connection cleanup).
// *connection.Manager satisfies it.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Option configures a handler.
type Option func(*config)

type config struct {
	flushers    []Flusher
	log         *slog.Logger
	concurrency int
	// sweepEvery and sweepFor: see WithSweepRepeat.
	sweepEvery, sweepFor time.Duration
}

func newConfig(opts []Option) config {
	c := config{log: slog.New(slog.DiscardHandler), concurrency: DefaultStreamConcurrency}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	return c
}

// WithFlusher makes the handler call f.Flush before it returns. Given
// more than once, the flushers run in the order given: pass the channel
// service before the connection manager, whose background work its
// fan-out adds to.
func WithFlusher(f Flusher) Option {
	return func(c *config) {
		if f != nil {
			c.flushers = append(c.flushers, f)
		}
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithStreamConcurrency sets how many requests of one stream batch run at
// once (default [DefaultStreamConcurrency]).
func WithStreamConcurrency(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.concurrency = n
		}
	}
}

// flush waits for background work, logging rather than failing: the reply
// has been sent already.
func (c config) flush(ctx context.Context) {
	for _, f := range c.flushers {
		if err := f.Flush(ctx); err != nil {
			c.log.WarnContext(ctx, "flushing background work", slog.Any("error", err))
		}
	}
}
