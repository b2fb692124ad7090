package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

// metricsPath is where `streamer dev` serves Prometheus metrics.
const metricsPath = "/metrics"

// devMetrics serves /metrics: the connection manager's collector, the
// processor's stats, and what the gateway's Observer sees. Without
// --metrics-addr it shares the gateway's listener, as one more path of
// the server that serves the demo page, the console and the gateway
// (dev_ui.go); with it, a server of its own.
type devMetrics struct {
	reg *prometheus.Registry
	obs *gatewayMetrics
	url string

	own   net.Listener // --metrics-addr's listener, or nil
	srv   *http.Server // serves own
	ownCh chan error   // srv.Serve's result, once started
}

// newDevMetrics registers the metrics and, with --metrics-addr, listens.
// jwks, a set fetched from --jwt-jwks-url, adds its refresh metrics.
func newDevMetrics(addr string, gwLn net.Listener, mgr *connection.Manager, proc *streamer.Processor, jwks *auth.JWKS) (*devMetrics, error) {
	m := &devMetrics{reg: prometheus.NewRegistry(), obs: newGatewayMetrics(local.RouteConnect, local.RouteDisconnect, local.RouteDefault)}
	m.reg.MustRegister(mgr.Collector(), m.obs, processorCollector{proc},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if jwks != nil {
		m.reg.MustRegister(jwksCollector{jwks})
	}
	m.url = "http://" + gwLn.Addr().String() + metricsPath
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, usageError{fmt.Errorf("--metrics-addr: %w", err)}
		}
		m.own, m.url = ln, "http://"+ln.Addr().String()+metricsPath
	}
	return m, nil
}

// close releases --metrics-addr's listener when startDev fails before
// serving.
func (m *devMetrics) close() {
	if m.own != nil && m.ownCh == nil {
		m.own.Close()
	}
}

// handler answers GET /metrics and passes the rest to next (404 without).
func (m *devMetrics) handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if next != nil {
		mux.Handle("/", next)
	}
	return mux
}

// wrap adds /metrics to the gateway listener's handler, unless
// --metrics-addr moved it.
func (m *devMetrics) wrap(next http.Handler) http.Handler {
	if m.own != nil {
		return next
	}
	return m.handler(next)
}

// start serves --metrics-addr's listener, if any, until shutdownMetrics,
// behind guard (the gateway's Host and token rules).
func (m *devMetrics) start(log *slog.Logger, guard func(http.Handler) http.Handler) {
	if m.own == nil {
		return
	}
	m.srv = local.ServerTimeouts(&http.Server{Handler: guard(m.handler(nil)),
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)})
	m.ownCh = make(chan error, 1)
	go func() { m.ownCh <- m.srv.Serve(m.own) }()
}

// shutdownMetrics stops --metrics-addr's server (with a shared listener,
// the UI's server shutdown covers /metrics).
func (s *devStack) shutdownMetrics(ctx context.Context) error {
	m := s.metrics
	if m == nil || m.ownCh == nil {
		return nil
	}
	err := m.srv.Shutdown(ctx)
	if serr := <-m.ownCh; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// gatewayMetrics is a local.Observer that counts what the gateway does.
// Labels stay low-cardinality: route keys come from the configuration,
// close codes and methods outside the usual few are folded into "other",
// and no connection ID is ever a label.
type gatewayMetrics struct {
	open                   prometheus.Gauge
	opened                 prometheus.Counter
	closed                 *prometheus.CounterVec
	msgsIn, bytesIn        prometheus.Counter
	msgsOut, bytesOut      prometheus.Counter
	invocations, routeErrs *prometheus.CounterVec
	routeDur               *prometheus.HistogramVec
	mgmt                   *prometheus.CounterVec
}

var _ local.Observer = (*gatewayMetrics)(nil)

// newGatewayMetrics counts the gateway's events; routes are the
// configured route keys.
func newGatewayMetrics(routes ...string) *gatewayMetrics {
	const ns, sub = "streamer", "gateway"
	o := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: ns, Subsystem: sub, Name: name, Help: help}
	}
	g := &gatewayMetrics{
		open:        prometheus.NewGauge(prometheus.GaugeOpts(o("connections_open", "WebSocket connections open now."))),
		opened:      prometheus.NewCounter(prometheus.CounterOpts(o("connections_opened_total", "Connections accepted by $connect."))),
		closed:      prometheus.NewCounterVec(prometheus.CounterOpts(o("connections_closed_total", "Connections closed, by close code (unusual codes as \"other\").")), []string{"code"}),
		msgsIn:      prometheus.NewCounter(prometheus.CounterOpts(o("messages_in_total", "Client messages routed to a handler."))),
		bytesIn:     prometheus.NewCounter(prometheus.CounterOpts(o("messages_in_bytes_total", "Bytes of client messages routed."))),
		msgsOut:     prometheus.NewCounter(prometheus.CounterOpts(o("messages_out_total", "Messages delivered to clients (@connections POST answered 200)."))),
		bytesOut:    prometheus.NewCounter(prometheus.CounterOpts(o("messages_out_bytes_total", "Bytes of messages delivered to clients."))),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts(o("route_invocations_total", "Handler invocations by route key.")), []string{"route"}),
		routeErrs:   prometheus.NewCounterVec(prometheus.CounterOpts(o("route_errors_total", "Handler invocations that failed (error, panic, timeout or a 5xx answer), by route key.")), []string{"route"}),
		routeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "route_duration_seconds",
			Help: "Handler duration by route key.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}, []string{"route"}),
		mgmt: prometheus.NewCounterVec(prometheus.CounterOpts(o("management_calls_total", "@connections calls answered, by method and HTTP status.")), []string{"method", "status"}),
	}
	// The series an alarm or a dashboard reads exist from the first
	// scrape, at zero, rather than appearing with the first event.
	for _, r := range routes {
		g.invocations.WithLabelValues(r)
		g.routeErrs.WithLabelValues(r)
		g.routeDur.WithLabelValues(r)
	}
	for _, c := range []string{"1000", "1001", "1006"} {
		g.closed.WithLabelValues(c)
	}
	for _, st := range []string{"200", "410", "429"} {
		g.mgmt.WithLabelValues(http.MethodPost, st)
	}
	return g
}

func (g *gatewayMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.open, g.opened, g.closed, g.msgsIn, g.bytesIn, g.msgsOut, g.bytesOut,
		g.invocations, g.routeErrs, g.routeDur, g.mgmt}
}

// Describe implements prometheus.Collector.
func (g *gatewayMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range g.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (g *gatewayMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range g.collectors() {
		c.Collect(ch)
	}
}

// ConnectionOpened implements local.Observer.
func (g *gatewayMetrics) ConnectionOpened(local.ConnectionInfo) {
	g.opened.Inc()
	g.open.Inc()
}

// ConnectionClosed implements local.Observer.
func (g *gatewayMetrics) ConnectionClosed(_ local.ConnectionInfo, code int, _ string) {
	g.open.Dec()
	g.closed.WithLabelValues(closeCodeLabel(code)).Inc()
}

// RouteInvoked implements local.Observer.
func (g *gatewayMetrics) RouteInvoked(ri local.RouteInvocation) {
	g.invocations.WithLabelValues(ri.RouteKey).Inc()
	g.routeDur.WithLabelValues(ri.RouteKey).Observe(ri.Duration.Seconds())
	if ri.Err != nil || ri.Status >= 500 {
		g.routeErrs.WithLabelValues(ri.RouteKey).Inc()
	}
	if ri.RouteKey != local.RouteConnect && ri.RouteKey != local.RouteDisconnect {
		g.msgsIn.Inc()
		g.bytesIn.Add(float64(ri.Bytes))
	}
}

// ManagementCalled implements local.Observer.
func (g *gatewayMetrics) ManagementCalled(mc local.ManagementCall) {
	method := mc.Method
	switch method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		method = "other"
	}
	g.mgmt.WithLabelValues(method, strconv.Itoa(mc.Status)).Inc()
	if method == http.MethodPost && mc.Status == http.StatusOK {
		g.msgsOut.Inc()
		g.bytesOut.Add(float64(mc.Bytes))
	}
}

// closeCodeLabel keeps the close codes an operator reads (RFC 6455
// section 7.4.1) and folds the rest, which clients choose freely.
func closeCodeLabel(code int) string {
	switch code {
	case 1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012:
		return strconv.Itoa(code)
	}
	return "other"
}

// processorCollector exposes Processor.Stats, read at scrape time.
type processorCollector struct{ p *streamer.Processor }

var (
	procDepth    = prometheus.NewDesc("streamer_processor_queue_depth", "Async requests waiting for an in-process worker.", nil, nil)
	procCapacity = prometheus.NewDesc("streamer_processor_queue_capacity", "Size of the in-process queue; when full, new async requests are refused.", nil, nil)
	procRunning  = prometheus.NewDesc("streamer_processor_running", "Async handlers running now.", nil, nil)
	procOutcomes = prometheus.NewDesc("streamer_processor_requests_total", "Async request outcomes: completed, failed, retried (attempt put back) and lost (cancelled or taken over while running).", []string{"outcome"}, nil)
	procStoreErr = prometheus.NewDesc("streamer_processor_store_errors_total", "Process calls that could not reach the request store.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c processorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{procDepth, procCapacity, procRunning, procOutcomes, procStoreErr} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c processorCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	ch <- prometheus.MustNewConstMetric(procDepth, prometheus.GaugeValue, float64(s.QueueDepth))
	ch <- prometheus.MustNewConstMetric(procCapacity, prometheus.GaugeValue, float64(s.QueueCapacity))
	ch <- prometheus.MustNewConstMetric(procRunning, prometheus.GaugeValue, float64(s.Running))
	for outcome, n := range map[string]uint64{"completed": s.Completed, "failed": s.Failed, "retried": s.Retried, "lost": s.Lost} {
		ch <- prometheus.MustNewConstMetric(procOutcomes, prometheus.CounterValue, float64(n), outcome)
	}
	ch <- prometheus.MustNewConstMetric(procStoreErr, prometheus.CounterValue, float64(s.StoreErrors))
}

// jwksCollector exposes a fetched JWKS's Stats, read at scrape time.
type jwksCollector struct{ s *auth.JWKS }

var (
	jwksKeys        = prometheus.NewDesc("streamer_auth_jwks_keys", "Keys in the last good JWKS from --jwt-jwks-url.", nil, nil)
	jwksRequests    = prometheus.NewDesc("streamer_auth_jwks_requests_total", "JWKS requests that reached the identity provider.", nil, nil)
	jwksNotModified = prometheus.NewDesc("streamer_auth_jwks_not_modified_total", "JWKS refreshes answered 304 Not Modified.", nil, nil)
	jwksFailures    = prometheus.NewDesc("streamer_auth_jwks_refresh_failures_total", "JWKS refreshes that failed (the last good keys stayed in use).", nil, nil)
	jwksLastSuccess = prometheus.NewDesc("streamer_auth_jwks_last_success_timestamp_seconds", "When the identity provider last answered with a usable JWKS.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c jwksCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jwksKeys, jwksRequests, jwksNotModified, jwksFailures, jwksLastSuccess} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c jwksCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	ch <- prometheus.MustNewConstMetric(jwksKeys, prometheus.GaugeValue, float64(c.s.Len()))
	ch <- prometheus.MustNewConstMetric(jwksRequests, prometheus.CounterValue, float64(st.Requests))
	ch <- prometheus.MustNewConstMetric(jwksNotModified, prometheus.CounterValue, float64(st.NotModified))
	ch <- prometheus.MustNewConstMetric(jwksFailures, prometheus.CounterValue, float64(st.Failures))
	var last float64
	if !st.LastSuccess.IsZero() {
		last = float64(st.LastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(jwksLastSuccess, prometheus.GaugeValue, last)
}
