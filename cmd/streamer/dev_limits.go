package main

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamer-go/streamer/runtime/local"
)

// limitOptions are --quotas and --faults: API Gateway's account quotas
// and its bad days, on request.
type limitOptions struct {
	quotas *local.Quotas
	faults *local.Faults
	// messageLimit, frameLimit, idle and lifetime are --quotas overrides
	// of the gateway's per-connection limits; zero keeps the gateway's.
	messageLimit, frameLimit int
	idle, lifetime           time.Duration
}

// parseQuotas reads --quotas: "aws" for API Gateway's numbers, then
// comma-separated overrides: connections=N (new connections a second),
// connection-burst=N, requests=N (@connections calls a second), burst=N,
// message=BYTES, frame=BYTES, idle=DURATION, lifetime=DURATION.
func (o *limitOptions) parseQuotas(v string) error {
	if v == "" || v == "off" {
		return nil
	}
	parts := splitList(v)
	if len(parts) == 0 || parts[0] != "aws" {
		return fmt.Errorf("--quotas %q: want \"aws\", then overrides like aws,requests=20000", v)
	}
	q := &local.Quotas{}
	for _, p := range parts[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("--quotas: %q is not key=value", p)
		}
		var err error
		switch k {
		case "connections":
			q.NewConnectionsPerSecond, err = positiveFloat(val)
		case "connection-burst":
			q.NewConnectionsBurst, err = positiveInt(val)
		case "requests":
			q.RequestsPerSecond, err = positiveFloat(val)
		case "burst":
			q.RequestsBurst, err = positiveInt(val)
		case "message":
			o.messageLimit, err = positiveInt(val)
		case "frame":
			o.frameLimit, err = positiveInt(val)
		case "idle":
			o.idle, err = positiveDuration(val)
		case "lifetime":
			o.lifetime, err = positiveDuration(val)
		default:
			return fmt.Errorf("--quotas: unknown key %q (connections, connection-burst, requests, burst, message, frame, idle, lifetime)", k)
		}
		if err != nil {
			return fmt.Errorf("--quotas %s: %w", k, err)
		}
	}
	o.quotas = q
	return nil
}

// parseFaults reads --faults: comma-separated rates between 0 and 1 and
// settings: 5xx=RATE (500 on @connections), 410=RATE (GoneException for
// live connections), latency=DURATION@RATE, lost-disconnect=RATE,
// drop=RATE (connection dropped without a close frame on a POST),
// seed=N (the same seed injects the same faults).
func (o *limitOptions) parseFaults(v string) error {
	if v == "" || v == "off" {
		return nil
	}
	f := &local.Faults{Seed: uint64(time.Now().UnixNano())}
	for _, p := range splitList(v) {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("--faults: %q is not key=value", p)
		}
		var err error
		switch k {
		case "5xx", "500":
			f.ServerError, err = rate(val)
		case "410", "gone":
			f.Gone, err = rate(val)
		case "latency":
			d, r, ok := strings.Cut(val, "@")
			if !ok {
				return fmt.Errorf("--faults latency=%q: want DURATION@RATE, like 200ms@0.1", val)
			}
			if f.Latency, err = positiveDuration(d); err == nil {
				f.LatencyRate, err = rate(r)
			}
		case "lost-disconnect":
			f.LostDisconnect, err = rate(val)
		case "drop":
			f.Drop, err = rate(val)
		case "seed":
			f.Seed, err = strconv.ParseUint(val, 10, 64)
		default:
			return fmt.Errorf("--faults: unknown key %q (5xx, 410, latency, lost-disconnect, drop, seed)", k)
		}
		if err != nil {
			return fmt.Errorf("--faults %s: %w", k, err)
		}
	}
	if f.ServerError+f.Gone+f.Drop > 1 {
		return fmt.Errorf("--faults: 5xx, 410 and drop add up to more than 1")
	}
	o.faults = f
	return nil
}

func positiveFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive number", s)
	}
	return v, nil
}

func positiveInt(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive integer", s)
	}
	return v, nil
}

func positiveDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return v, nil
}

func rate(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is not a rate between 0 and 1", s)
	}
	return v, nil
}

// apply adds the quotas and faults to a gateway's configuration.
func (o limitOptions) apply(cfg *local.Config) {
	cfg.Quotas, cfg.Faults = o.quotas, o.faults
	if o.messageLimit > 0 {
		cfg.MessageLimit = o.messageLimit
	}
	if o.frameLimit > 0 {
		cfg.FrameLimit = o.frameLimit
	}
	if o.idle > 0 {
		cfg.IdleTimeout = o.idle
	}
	if o.lifetime > 0 {
		cfg.MaxLifetime = o.lifetime
	}
}

// printLimits says at start which quotas and faults are in force.
func (o limitOptions) printLimits(w io.Writer) {
	if o.quotas != nil {
		q := o.quotas.WithDefaults()
		message, frame := cmp.Or(o.messageLimit, local.MaxMessageBytes), cmp.Or(o.frameLimit, local.MaxFrameBytes)
		idle, lifetime := "--idle-timeout", "--max-lifetime"
		if o.idle > 0 {
			idle = o.idle.String()
		}
		if o.lifetime > 0 {
			lifetime = o.lifetime.String()
		}
		fmt.Fprintf(w, "Quotas:              AWS's: %g new connections/s (burst %d, then 429), %g @connections calls/s (burst %d, then 429 LimitExceededException), message %d B, frame %d B, idle %s, lifetime %s\n",
			q.NewConnectionsPerSecond, q.NewConnectionsBurst, q.RequestsPerSecond, q.RequestsBurst, message, frame, idle, lifetime)
	}
	if f := o.faults; f != nil {
		fmt.Fprintf(w, "Faults:              5xx %g, 410 %g, latency %s at %g, lost $disconnect %g, drop %g (seed %d)\n",
			f.ServerError, f.Gone, f.Latency, f.LatencyRate, f.LostDisconnect, f.Drop, f.Seed)
	}
}

// limitsCollector exposes the gateway's LimitStats at scrape time.
type limitsCollector struct{ gw *local.Gateway }

var (
	limThrottled = prometheus.NewDesc("streamer_gateway_throttled_total", "Requests refused by --quotas: upgrades over the new-connection rate (kind=\"connection\") and @connections calls answered 429 (kind=\"request\").", []string{"kind"}, nil)
	limInjected  = prometheus.NewDesc("streamer_gateway_faults_injected_total", "Faults injected by --faults, by kind.", []string{"fault"}, nil)
	limQuota     = prometheus.NewDesc("streamer_gateway_quota", "The --quotas in force (absent without --quotas): rate per second and burst, by kind.", []string{"kind", "limit"}, nil)
)

// Describe implements prometheus.Collector.
func (c limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- limThrottled
	ch <- limInjected
	ch <- limQuota
}

// Collect implements prometheus.Collector.
func (c limitsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.gw.LimitStats()
	if q := s.Quotas; q != nil {
		ch <- prometheus.MustNewConstMetric(limThrottled, prometheus.CounterValue, float64(s.ThrottledConnections), "connection")
		ch <- prometheus.MustNewConstMetric(limThrottled, prometheus.CounterValue, float64(s.ThrottledRequests), "request")
		ch <- prometheus.MustNewConstMetric(limQuota, prometheus.GaugeValue, q.NewConnectionsPerSecond, "connection", "rate")
		ch <- prometheus.MustNewConstMetric(limQuota, prometheus.GaugeValue, float64(q.NewConnectionsBurst), "connection", "burst")
		ch <- prometheus.MustNewConstMetric(limQuota, prometheus.GaugeValue, q.RequestsPerSecond, "request", "rate")
		ch <- prometheus.MustNewConstMetric(limQuota, prometheus.GaugeValue, float64(q.RequestsBurst), "request", "burst")
	}
	if s.Faults != nil {
		in := s.Injected
		for k, v := range map[string]uint64{"5xx": in.ServerErrors, "410": in.Gone, "latency": in.Delayed, "lost_disconnect": in.LostDisconnects, "drop": in.Dropped} {
			ch <- prometheus.MustNewConstMetric(limInjected, prometheus.CounterValue, float64(v), k)
		}
	}
}
