package connection

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamer-go/streamer/internal/histogram"
)

// collector exposes a Manager's Stats as Prometheus metrics. It reads the
// same running counters as Stats, so a scrape costs the same and never
// scans connections.
type collector struct {
	m *Manager

	activeSends, activeBroadcasts *prometheus.Desc
	sends, failures, retries      *prometheus.Desc
	broadcasts, errs, breakers    *prometheus.Desc
	sendLatency, broadcastLatency *prometheus.Desc
	throttled, throttleEvents     *prometheus.Desc
	pacingRate, pacingMaxRate     *prometheus.Desc
	pacingDelayed                 *prometheus.Desc
}

// Collector returns a prometheus.Collector for the manager's metrics,
// named streamer_connection_*: the counters and gauges of Stats, errors by
// type, breakers by state, and Send and Broadcast latency summaries
// (seconds, quantiles 0.5, 0.9 and 0.99), 429 answers (throttled_total)
// and the pacing Limiter's rate, budget, throttle events and delayed
// calls. Register it once per manager.
func (m *Manager) Collector() prometheus.Collector {
	const ns, sub = "streamer", "connection"
	name := func(n string) string { return prometheus.BuildFQName(ns, sub, n) }
	return &collector{
		m:                m,
		activeSends:      prometheus.NewDesc(name("active_sends"), "Send calls in flight.", nil, nil),
		activeBroadcasts: prometheus.NewDesc(name("active_broadcasts"), "Broadcast calls in flight.", nil, nil),
		sends:            prometheus.NewDesc(name("sends_total"), "Messages handled: one per Send and one per distinct Broadcast ID.", nil, nil),
		failures:         prometheus.NewDesc(name("send_failures_total"), "Messages not delivered.", nil, nil),
		retries:          prometheus.NewDesc(name("retries_total"), "Attempts beyond the first.", nil, nil),
		broadcasts:       prometheus.NewDesc(name("broadcasts_total"), "Broadcast calls.", nil, nil),
		errs:             prometheus.NewDesc(name("errors_total"), "Undelivered messages by cause.", []string{"type"}, nil),
		breakers:         prometheus.NewDesc(name("circuit_breakers"), "Remembered per-connection circuit breakers by state.", []string{"state"}, nil),
		sendLatency:      prometheus.NewDesc(name("send_duration_seconds"), "Duration of Send calls, retries included.", nil, nil),
		broadcastLatency: prometheus.NewDesc(name("broadcast_duration_seconds"), "Duration of Broadcast calls.", nil, nil),
		throttled:        prometheus.NewDesc(name("throttled_total"), "429 answers from the gateway, every attempt.", nil, nil),
		throttleEvents:   prometheus.NewDesc(name("throttle_events_total"), "Times throttling of many connections at once lowered the pacing rate.", nil, nil),
		pacingRate:       prometheus.NewDesc(name("pacing_rate"), "Current pacing rate in calls per second (0 = unlimited).", nil, nil),
		pacingMaxRate:    prometheus.NewDesc(name("pacing_max_rate"), "Configured pacing budget in calls per second (0 = unlimited).", nil, nil),
		pacingDelayed:    prometheus.NewDesc(name("paced_delayed_total"), "Calls that waited for a pacing token.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.activeSends, c.activeBroadcasts, c.sends, c.failures,
		c.retries, c.broadcasts, c.errs, c.breakers, c.sendLatency, c.broadcastLatency,
		c.throttled, c.throttleEvents, c.pacingRate, c.pacingMaxRate, c.pacingDelayed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	mt := &c.m.metrics
	ch <- prometheus.MustNewConstMetric(c.activeSends, prometheus.GaugeValue, float64(mt.activeSends.Load()))
	ch <- prometheus.MustNewConstMetric(c.activeBroadcasts, prometheus.GaugeValue, float64(mt.activeBroadcasts.Load()))
	ch <- prometheus.MustNewConstMetric(c.sends, prometheus.CounterValue, float64(mt.sends.Load()))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(mt.failures.Load()))
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(mt.retries.Load()))
	ch <- prometheus.MustNewConstMetric(c.broadcasts, prometheus.CounterValue, float64(mt.broadcasts.Load()))
	for k := kindOK + 1; k < numKinds; k++ {
		ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(mt.errs[k].Load()), k.String())
	}
	ch <- prometheus.MustNewConstMetric(c.throttled, prometheus.CounterValue, float64(mt.throttled.Load()))
	var pace LimiterStats
	if c.m.pace != nil {
		pace = c.m.pace.Stats()
	}
	ch <- prometheus.MustNewConstMetric(c.throttleEvents, prometheus.CounterValue, float64(pace.ThrottleEventsTotal))
	ch <- prometheus.MustNewConstMetric(c.pacingRate, prometheus.GaugeValue, pace.Rate)
	ch <- prometheus.MustNewConstMetric(c.pacingMaxRate, prometheus.GaugeValue, pace.MaxRate)
	ch <- prometheus.MustNewConstMetric(c.pacingDelayed, prometheus.CounterValue, float64(pace.DelayedTotal))
	closed, open, half := c.m.conns.stateCounts()
	for st, n := range map[breakerState]int64{stateClosed: closed, stateOpen: open, stateHalfOpen: half} {
		ch <- prometheus.MustNewConstMetric(c.breakers, prometheus.GaugeValue, float64(n), stateNames[st])
	}
	for desc, h := range map[*prometheus.Desc]*histogram.Histogram{
		c.sendLatency:      &mt.sendLatency,
		c.broadcastLatency: &mt.broadcastLatency,
	} {
		s := h.Snapshot()
		q := map[float64]float64{}
		for _, p := range []float64{0.5, 0.9, 0.99} {
			q[p] = s.Quantile(p) / 1e6 // microseconds to seconds
		}
		ch <- prometheus.MustNewConstSummary(desc, s.Count, float64(s.Sum)/1e6, q)
	}
}
