package awslambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// DefaultMetricsNamespace is the CloudWatch namespace of EMF metrics.
const DefaultMetricsNamespace = "Streamer"

// ErrEMFConfig is wrapped by NewEMF's errors.
var ErrEMFConfig = errors.New("awslambda: invalid EMF config")

// EMFOptions configures NewEMF.
type EMFOptions struct {
	// Namespace is the CloudWatch namespace (default
	// DefaultMetricsNamespace).
	Namespace string
	// Dimensions are fixed dimensions added to every line, such as
	// {"Stage": "prod"}. Keep them few and low-cardinality: every distinct
	// value set is a separate (billed) metric. Never a connection ID.
	Dimensions map[string]string
	// Manager is the connection manager whose sends, 410s, 429s,
	// broadcasts and latencies each line reports. Optional.
	Manager *connection.Manager
	// Processor is the async processor whose outcomes the stream and
	// sweep lines report. Optional.
	Processor *streamer.Processor
	// Now is the clock (default time.Now); tests fix it.
	Now func() time.Time
}

// EMF writes CloudWatch Embedded Metric Format lines
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
// one JSON line per invocation of a wrapped handler, after the handler's
// own flush, with what the Manager and Processor did during it. CloudWatch
// Logs turns each line into metrics, with no API call from the function
// (nothing is scraped on Lambda, and a PutMetricData per invocation would
// cost latency and money).
//
// Counts are differences of the Manager's and Processor's counters over
// the invocation. Lambda runs one invocation at a time per process, so
// they are exactly that invocation's work; a process serving concurrent
// invocations through one EMF would attribute work to whichever line
// covers it.
type EMF struct {
	w         io.Writer
	namespace string
	dims      map[string]string
	dimNames  []string
	mgr       *connection.Manager // or nil
	proc      *streamer.Processor
	now       func() time.Time
	mu        sync.Mutex // one Write per line; lines never interleave
}

// NewEMF returns an EMF writing to w (on Lambda: os.Stdout, which
// CloudWatch Logs reads).
func NewEMF(w io.Writer, opts EMFOptions) (*EMF, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: nil writer", ErrEMFConfig)
	}
	e := &EMF{w: w, namespace: opts.Namespace, dims: map[string]string{}, proc: opts.Processor, now: opts.Now}
	if e.namespace == "" {
		e.namespace = DefaultMetricsNamespace
	}
	if e.now == nil {
		e.now = time.Now
	}
	for k, v := range opts.Dimensions {
		switch {
		case k == "" || v == "":
			return nil, fmt.Errorf("%w: dimension %q=%q: names and values must not be empty", ErrEMFConfig, k, v)
		case k == dimHandler || k == "_aws" || metricNames[k]:
			return nil, fmt.Errorf("%w: dimension %q clashes with a member of the line", ErrEMFConfig, k)
		}
		e.dims[k] = v
	}
	if len(e.dims) >= 30 { // EMF allows 30 dimensions per set; Handler is one
		return nil, fmt.Errorf("%w: %d dimensions, at most 29 besides Handler", ErrEMFConfig, len(e.dims))
	}
	for k := range e.dims {
		e.dimNames = append(e.dimNames, k)
	}
	slices.Sort(e.dimNames)
	e.dimNames = append(e.dimNames, dimHandler)
	e.mgr = opts.Manager
	return e, nil
}

// dimHandler is the per-line dimension: which handler the line is about.
// Every metric is also published without it (see write).
const dimHandler = "Handler"

// Handler names, the values of the Handler dimension.
const (
	HandlerConnect    = "connect"
	HandlerDisconnect = "disconnect"
	HandlerRouter     = "router"
	HandlerStream     = "stream"
	HandlerSweep      = "sweep"
)

// Metric names and units, as CloudWatch shows them.
var metricUnits = []struct{ name, unit string }{
	{"Sends", "Count"},               // messages handled: Send calls plus broadcast recipients
	{"SendFailures", "Count"},        // of those, not delivered
	{"Gone", "Count"},                // 410 GoneException: the client left
	{"Throttled", "Count"},           // 429 LimitExceededException: throttled, or the client's buffer is full
	{"CircuitOpen", "Count"},         // refused by an open per-connection breaker
	{"Retries", "Count"},             // attempts beyond the first
	{"Broadcasts", "Count"},          // Broadcast calls
	{"BroadcastRecipients", "Count"}, // distinct IDs those broadcasts addressed
	{"BroadcastLatency", "Milliseconds"},
	{"SendLatency", "Milliseconds"},
	{"BreakersOpen", "Count"}, // open breakers at the end of the invocation
	{"AsyncCompleted", "Count"},
	{"AsyncFailed", "Count"},
	{"AsyncRetried", "Count"},
	{"AsyncLost", "Count"},
	{"AsyncStoreErrors", "Count"},
	{"StalledRequests", "Count"}, // requests a sweep found stalled and ran
}

var metricNames = func() map[string]bool {
	m := map[string]bool{}
	for _, mu := range metricUnits {
		m[mu.name] = true
	}
	return m
}()

// counters is one snapshot of everything a line reports.
type counters struct {
	conn connection.Counters
	proc streamer.ProcessorStats
}

func (e *EMF) snapshot() counters {
	var c counters
	if e.mgr != nil {
		c.conn = e.mgr.Counters()
	}
	if e.proc != nil {
		c.proc = e.proc.Stats()
	}
	return c
}

// line is one EMF document being built.
type line struct {
	handler string
	values  map[string]float64
	props   map[string]string
}

// emit writes the line for the work between before and now.
func (e *EMF) emit(ctx context.Context, handler string, before counters, async bool, extra map[string]float64, props map[string]string) {
	after := e.snapshot()
	v := map[string]float64{}
	if e.mgr != nil {
		a, b := after.conn, before.conn
		v["Sends"] = float64(a.Sends - b.Sends)
		v["SendFailures"] = float64(a.SendFailures - b.SendFailures)
		v["Gone"] = float64(a.Gone - b.Gone)
		v["Throttled"] = float64(a.Throttled - b.Throttled)
		v["CircuitOpen"] = float64(a.CircuitOpen - b.CircuitOpen)
		v["Retries"] = float64(a.Retries - b.Retries)
		bc, calls := a.Broadcasts-b.Broadcasts, a.SendCalls-b.SendCalls
		v["Broadcasts"] = float64(bc)
		v["BroadcastRecipients"] = float64((a.Sends - b.Sends) - calls)
		v["BreakersOpen"] = float64(a.BreakersOpen)
		// Averages over the invocation; a line without calls has none
		// rather than a misleading zero.
		if bc > 0 {
			v["BroadcastLatency"] = ms(a.BroadcastTime-b.BroadcastTime) / float64(bc)
		}
		if calls > 0 {
			v["SendLatency"] = ms(a.SendTime-b.SendTime) / float64(calls)
		}
	}
	if async && e.proc != nil {
		v["AsyncCompleted"] = float64(after.proc.Completed - before.proc.Completed)
		v["AsyncFailed"] = float64(after.proc.Failed - before.proc.Failed)
		v["AsyncRetried"] = float64(after.proc.Retried - before.proc.Retried)
		v["AsyncLost"] = float64(after.proc.Lost - before.proc.Lost)
		v["AsyncStoreErrors"] = float64(after.proc.StoreErrors - before.proc.StoreErrors)
	}
	for k, x := range extra {
		v[k] = x
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		if props == nil {
			props = map[string]string{}
		}
		props["lambda_request_id"] = lc.AwsRequestID
	}
	e.write(line{handler: handler, values: v, props: props})
}

// write encodes l as one EMF document and writes it as one line.
func (e *EMF) write(l line) {
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	type directive struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []metric   `json:"Metrics"`
	}
	doc := map[string]any{}
	// Properties first, so dimensions and metrics win any clash.
	for k, v := range l.props {
		doc[k] = v
	}
	var ms []metric
	for _, mu := range metricUnits {
		if x, ok := l.values[mu.name]; ok {
			ms = append(ms, metric{Name: mu.name, Unit: mu.unit})
			doc[mu.name] = x
		}
	}
	for k, v := range e.dims {
		doc[k] = v
	}
	doc[dimHandler] = l.handler
	doc["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []directive{{
			Namespace: e.namespace,
			// Per handler, and rolled up over handlers so one alarm
			// covers the deployment (the fixed dimensions alone; [] when
			// there are none, which EMF allows).
			Dimensions: [][]string{e.dimNames, e.dimNames[:len(e.dimNames)-1]},
			Metrics:    ms,
		}},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return // only floats and strings: cannot happen
	}
	data = append(data, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(data)
}

// WebSocket wraps a $connect, $disconnect or $default handler (name is
// the Handler dimension: HandlerConnect, HandlerDisconnect or
// HandlerRouter) to write one line per invocation, after its flush. The
// line carries the correlation ID (trace) as a property, never a
// dimension.
func (e *EMF) WebSocket(name string, h WebSocketHandler) WebSocketHandler {
	return func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		before := e.snapshot()
		resp, err := h(ctx, ev)
		props := map[string]string{"route_key": ev.RequestContext.RouteKey}
		if id := TraceID(ctx, ev); id != "" {
			props["trace_id"] = id
		}
		e.emit(ctx, name, before, false, nil, props)
		return resp, err
	}
}

// Stream wraps a StreamHandler to write one line per batch, with the
// async outcomes and the records reported back for retry.
func (e *EMF) Stream(h func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error)) func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		before := e.snapshot()
		resp, err := h(ctx, ev)
		e.emit(ctx, HandlerStream, before, true, nil, nil)
		return resp, err
	}
}

// Sweep wraps a SweepHandler to write one line per sweep, with
// StalledRequests: how many requests it found stalled and ran. Alarm when
// it stays above zero (dispatches are being lost) or when no sweep line
// arrives (the schedule stopped).
func (e *EMF) Sweep(h func(context.Context, events.EventBridgeEvent) (SweepResult, error)) func(context.Context, events.EventBridgeEvent) (SweepResult, error) {
	return func(ctx context.Context, ev events.EventBridgeEvent) (SweepResult, error) {
		before := e.snapshot()
		res, err := h(ctx, ev)
		e.emit(ctx, HandlerSweep, before, true, map[string]float64{"StalledRequests": float64(res.Ran)}, nil)
		return res, err
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
