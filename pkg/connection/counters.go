package connection

import "time"

// Counters are the Manager's raw running totals, for exporters that
// report per-interval differences (such as awslambda's EMF lines, one per
// invocation). Unlike Stats they carry call counts and latency sums, and
// no percentiles, so reading them costs a few atomic loads.
type Counters struct {
	// Sends counts messages handled (Send calls plus distinct broadcast
	// IDs); SendFailures those not delivered; Retries attempts beyond the
	// first.
	Sends, SendFailures, Retries uint64
	// Gone (410), Throttled (429) and CircuitOpen are SendFailures by
	// cause.
	Gone, Throttled, CircuitOpen uint64
	// SendCalls and Broadcasts count Send and Broadcast calls, and
	// SendTime and BroadcastTime their summed durations.
	SendCalls, Broadcasts   uint64
	SendTime, BroadcastTime time.Duration
	// BreakersOpen is the number of open circuit breakers now.
	BreakersOpen int64
}

// Counters returns the running totals.
func (m *Manager) Counters() Counters {
	mt := &m.metrics
	send, bc := mt.sendLatency.Snapshot(), mt.broadcastLatency.Snapshot()
	c := Counters{
		Sends:         mt.sends.Load(),
		SendFailures:  mt.failures.Load(),
		Retries:       mt.retries.Load(),
		Gone:          mt.errs[kindGone].Load(),
		Throttled:     mt.errs[kindThrottled].Load(),
		CircuitOpen:   mt.errs[kindCircuitOpen].Load(),
		SendCalls:     send.Count,
		Broadcasts:    mt.broadcasts.Load(),
		SendTime:      time.Duration(send.Sum) * time.Microsecond,
		BroadcastTime: time.Duration(bc.Sum) * time.Microsecond,
	}
	_, c.BreakersOpen, _ = m.conns.stateCounts()
	return c
}
