package streamer

import "sync/atomic"

// ProcessorStats is a snapshot of what a Processor did, for metrics. The
// counters only grow; compare two snapshots for a rate.
type ProcessorStats struct {
	// QueueDepth is the requests waiting in the processor's Queue for a
	// worker (queued, or reserved by the router and about to be);
	// QueueCapacity is the Queue's size (NewQueue).
	QueueDepth, QueueCapacity int
	// Running is the requests whose handler runs now.
	Running int64
	// Completed counts requests that stored a result; Failed those that
	// ended in an error (handler error, unknown action, retries
	// exhausted); Retried the attempts put back for another try; Lost the
	// runs whose request was cancelled or taken over by another worker
	// while they ran.
	Completed, Failed, Retried, Lost uint64
	// StoreErrors counts Process calls that could not reach the store
	// (the caller delivers the request again).
	StoreErrors uint64
}

// processorStats are a Processor's counters, updated with atomics.
type processorStats struct {
	running                          atomic.Int64
	completed, failed, retried, lost atomic.Uint64
	storeErrors                      atomic.Uint64
}

// Stats returns a snapshot of the processor's counters. It is cheap and
// safe to call concurrently with everything else.
func (p *Processor) Stats() ProcessorStats {
	s := &p.stats
	st := ProcessorStats{
		Running:     s.running.Load(),
		Completed:   s.completed.Load(),
		Failed:      s.failed.Load(),
		Retried:     s.retried.Load(),
		Lost:        s.lost.Load(),
		StoreErrors: s.storeErrors.Load(),
	}
	st.QueueDepth, st.QueueCapacity = p.queue.Len(), p.queue.Cap()
	return st
}

// counted wraps one attempt with the running gauge and the outcome
// counters that attempt itself does not know (retries, store errors).
func (p *Processor) counted(o outcome, err error) (outcome, error) {
	switch {
	case err != nil:
		p.stats.storeErrors.Add(1)
	case o == requeued:
		p.stats.retried.Add(1)
	}
	return o, err
}
