package connection

import (
	"sync/atomic"
	"time"

	"github.com/streamer-go/streamer/internal/histogram"
)

// metrics are running counters, updated with atomics on the send path so
// that senders never share a lock.
type metrics struct {
	activeSends      atomic.Int64
	activeBroadcasts atomic.Int64
	sends            atomic.Uint64 // messages handled: each Send, each broadcast ID
	failures         atomic.Uint64
	retries          atomic.Uint64
	broadcasts       atomic.Uint64
	throttled        atomic.Uint64 // 429 answers, every attempt
	errs             [numKinds]atomic.Uint64
	sendLatency      histogram.Histogram // microseconds, per Send call
	broadcastLatency histogram.Histogram // microseconds, per Broadcast call
}

// outcome counts one message's final outcome.
func (mt *metrics) outcome(k kind) {
	mt.sends.Add(1)
	if k != kindOK {
		mt.failures.Add(1)
		mt.errs[k].Add(1)
	}
}

// Stats is a snapshot of the Manager's metrics. GetMetrics and the
// Prometheus collector are built from it.
type Stats struct {
	// ActiveSends and ActiveBroadcasts are the calls in flight now.
	ActiveSends      int64
	ActiveBroadcasts int64
	// SendsTotal counts messages handled: one per Send call and one per
	// distinct ID of each Broadcast. SendFailuresTotal counts those that
	// were not delivered.
	SendsTotal        uint64
	SendFailuresTotal uint64
	// RetriesTotal counts attempts beyond the first.
	RetriesTotal uint64
	// BroadcastsTotal counts Broadcast calls.
	BroadcastsTotal uint64
	// ErrorsByType counts failures by cause: gone, throttled,
	// server_error, forbidden, payload_too_large, network, circuit_open,
	// not_found, client_error, canceled, invalid_message, other. Every key
	// is present.
	ErrorsByType map[string]uint64
	// SendLatencyP50 and SendLatencyP99 are percentiles of whole Send
	// calls (retries included) since the manager started.
	SendLatencyP50, SendLatencyP99 time.Duration
	// BroadcastLatencyP50 and BroadcastLatencyP99 are percentiles of whole
	// Broadcast calls.
	BroadcastLatencyP50, BroadcastLatencyP99 time.Duration
	// Breakers counts the remembered circuit breakers by state. A breaker
	// whose cooldown has passed counts as open until its next call.
	Breakers BreakerCounts
	// ThrottledTotal counts the 429 answers this manager got, every
	// attempt (ErrorsByType["throttled"] counts only messages that failed
	// for good).
	ThrottledTotal uint64
	// Pacing is the state of the manager's Limiter (shared with the other
	// managers given the same one; zero when pacing is off).
	Pacing LimiterStats
}

// BreakerCounts is the number of circuit breakers in each state.
type BreakerCounts struct {
	Closed, Open, HalfOpen int64
}

func micros(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }

// Stats returns a snapshot of the metrics. Its cost does not depend on
// the number of messages sent or connections known.
func (m *Manager) Stats() Stats {
	mt := &m.metrics
	s := Stats{
		ActiveSends:       mt.activeSends.Load(),
		ActiveBroadcasts:  mt.activeBroadcasts.Load(),
		SendsTotal:        mt.sends.Load(),
		SendFailuresTotal: mt.failures.Load(),
		RetriesTotal:      mt.retries.Load(),
		BroadcastsTotal:   mt.broadcasts.Load(),
		ErrorsByType:      make(map[string]uint64, numKinds-1),
	}
	for k := kindOK + 1; k < numKinds; k++ {
		s.ErrorsByType[k.String()] = mt.errs[k].Load()
	}
	send := mt.sendLatency.Snapshot()
	s.SendLatencyP50, s.SendLatencyP99 = micros(send.Quantile(0.5)), micros(send.Quantile(0.99))
	bc := mt.broadcastLatency.Snapshot()
	s.BroadcastLatencyP50, s.BroadcastLatencyP99 = micros(bc.Quantile(0.5)), micros(bc.Quantile(0.99))
	s.Breakers.Closed, s.Breakers.Open, s.Breakers.HalfOpen = m.conns.stateCounts()
	s.ThrottledTotal = mt.throttled.Load()
	if m.pace != nil {
		s.Pacing = m.pace.Stats()
	}
	return s
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// GetMetrics returns the metrics as a map, for logging and JSON
// endpoints: active_sends, active_broadcasts, sends_total,
// send_failures_total, retries_total, broadcasts_total, errors_by_type
// (map[string]uint64), send_latency_p50_ms, send_latency_p99_ms,
// broadcast_latency_p50_ms, broadcast_latency_p99_ms (float64) and
// circuit_breakers (map[string]int64 by state: closed, open, half_open),
// throttled_total (uint64: 429 answers), and the pacing Limiter's
// pacing_rate and pacing_max_rate (float64 calls/s, 0 = unlimited),
// pacing_burst (int), throttle_events_total and paced_delayed_total
// (uint64). Prefer Stats for typed access.
func (m *Manager) GetMetrics() map[string]any {
	s := m.Stats()
	return map[string]any{
		"active_sends":             s.ActiveSends,
		"active_broadcasts":        s.ActiveBroadcasts,
		"sends_total":              s.SendsTotal,
		"send_failures_total":      s.SendFailuresTotal,
		"retries_total":            s.RetriesTotal,
		"broadcasts_total":         s.BroadcastsTotal,
		"errors_by_type":           s.ErrorsByType,
		"send_latency_p50_ms":      millis(s.SendLatencyP50),
		"send_latency_p99_ms":      millis(s.SendLatencyP99),
		"broadcast_latency_p50_ms": millis(s.BroadcastLatencyP50),
		"broadcast_latency_p99_ms": millis(s.BroadcastLatencyP99),
		"circuit_breakers": map[string]int64{
			"closed":    s.Breakers.Closed,
			"open":      s.Breakers.Open,
			"half_open": s.Breakers.HalfOpen,
		},
		"throttled_total":       s.ThrottledTotal,
		"pacing_rate":           s.Pacing.Rate,
		"pacing_max_rate":       s.Pacing.MaxRate,
		"pacing_burst":          s.Pacing.Burst,
		"throttle_events_total": s.Pacing.ThrottleEventsTotal,
		"paced_delayed_total":   s.Pacing.DelayedTotal,
	}
}
