package main

import (
	"errors"
	"flag"
	"time"

	"github.com/streamer-go/streamer/pkg/streamer"
)

// recoveryOptions are `streamer dev`'s flags for recovering async requests
// whose worker died: how long a claim lasts without renewal, and how often
// the pool looks for stalled requests.
type recoveryOptions struct {
	lease         time.Duration
	sweepInterval time.Duration
	pendingGrace  time.Duration
}

// recoveryFlags registers the flags on fs; finish validates them after
// parsing.
func recoveryFlags(fs *flag.FlagSet, o *recoveryOptions) (finish func() error) {
	fs.DurationVar(&o.lease, "lease", streamer.DefaultLease,
		"how long a running async request's claim lasts without renewal (renewed every third of it); after a crash another process takes the request over this long after the last renewal")
	fs.DurationVar(&o.sweepInterval, "sweep-interval", streamer.DefaultSweepInterval,
		"how often to look for stalled async requests (queued but never dispatched, or held under an expired lease); 0 turns the periodic sweep off. A lease a client is waiting on (resume, resubmit) is also looked at when it ends")
	fs.DurationVar(&o.pendingGrace, "pending-grace", streamer.DefaultPendingGrace,
		"how long an async request may stay queued before a sweep takes its dispatch for lost and runs it")
	return func() error {
		if o.lease <= 0 {
			return errors.New("--lease must be positive")
		}
		if o.sweepInterval < 0 || o.pendingGrace < 0 {
			return errors.New("--sweep-interval and --pending-grace must not be negative")
		}
		return nil
	}
}

// processorOptions turns the flags into the processor's options.
func (o recoveryOptions) processorOptions() []streamer.ProcessorOption {
	return []streamer.ProcessorOption{
		streamer.WithLease(o.lease),
		streamer.WithSweepInterval(o.sweepInterval),
		streamer.WithPendingGrace(o.pendingGrace),
	}
}
