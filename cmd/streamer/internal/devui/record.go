package devui

import (
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/runtime/local"
)

// DefaultHistory is how many route invocations, @connections calls and
// closed connections the console keeps by default.
const DefaultHistory = 200

// Route is one route invocation as the console shows it.
type Route struct {
	// Seq numbers the invocations from 1; RouteDetail(Seq) has its event
	// and answer while it is in the history.
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	RouteKey     string    `json:"routeKey"`
	ConnectionID string    `json:"connectionId"`
	RequestID    string    `json:"requestId"`
	Status       int       `json:"status"`
	LatencyMS    float64   `json:"latencyMs"`
	Bytes        int       `json:"bytes"`
	Error        string    `json:"error,omitempty"`
}

// Call is one @connections request as the console shows it.
type Call struct {
	// Seq numbers the calls from 1; CallDetail(Seq) has the posted body
	// while the call is in the history.
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Method       string    `json:"method"`
	ConnectionID string    `json:"connectionId"`
	Status       int       `json:"status"`
	ErrorType    string    `json:"errorType,omitempty"`
	LatencyMS    float64   `json:"latencyMs"`
	Bytes        int       `json:"bytes"`
}

// Closed is one connection that closed.
type Closed struct {
	Time         time.Time `json:"time"`
	ConnectionID string    `json:"connectionId"`
	ConnectedAt  time.Time `json:"connectedAt"`
	Code         int       `json:"code"`
	Reason       string    `json:"reason"`
}

// Totals count every event since the UI was created, beyond the history.
type Totals struct {
	Opened     int `json:"opened"`
	Closed     int `json:"closed"`
	Routes     int `json:"routes"`
	Management int `json:"management"`
}

// ring keeps the newest n items; n > 0.
type ring[T any] struct {
	items []T
	next  int
	full  bool
}

func newRing[T any](n int) ring[T] { return ring[T]{items: make([]T, n)} }

func (r *ring[T]) add(v T) {
	r.items[r.next] = v
	r.next++
	if r.next == len(r.items) {
		r.next, r.full = 0, true
	}
}

// slot advances the ring and returns the slot of the new item, to be
// filled in place.
func (r *ring[T]) slot() *T {
	p := &r.items[r.next]
	r.next++
	if r.next == len(r.items) {
		r.next, r.full = 0, true
	}
	return p
}

// eachRef calls f with each item, newest first, in place.
func (r *ring[T]) eachRef(f func(*T)) {
	n := r.next
	if r.full {
		n = len(r.items)
	}
	for i := 1; i <= n; i++ {
		f(&r.items[(r.next-i+len(r.items))%len(r.items)])
	}
}

// newestFirst copies the items, newest first.
func (r *ring[T]) newestFirst() []T {
	n := r.next
	if r.full {
		n = len(r.items)
	}
	out := make([]T, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.items[(r.next-i+len(r.items))%len(r.items)])
	}
	return out
}

// MaxKeptBody is how much of a @connections POST body the console keeps
// for its detail view; the rest is counted, not kept.
const MaxKeptBody = 1024

// routeEntry is a route invocation with what the detail view shows: the
// event and the answer, kept as the gateway passed them (its events are
// built per invocation and not changed afterwards), encoded only when
// someone asks.
type routeEntry struct {
	Route
	event    events.APIGatewayWebsocketProxyRequest
	response events.APIGatewayProxyResponse
}

// callEntry is a @connections call with the start of its body, copied
// into the ring's own storage (the gateway's buffer is only lent for the
// call), so recording a call allocates nothing.
type callEntry struct {
	Call
	body    [MaxKeptBody]byte
	bodyLen int
}

// recorder is the UI's local.Observer: it only appends to bounded rings
// under a mutex, so the gateway's goroutines never wait on the console.
type recorder struct {
	mu     sync.Mutex
	routes ring[routeEntry]
	calls  ring[callEntry]
	closed ring[Closed]
	totals Totals
}

var _ local.Observer = (*recorder)(nil)

func newRecorder(history int) *recorder {
	return &recorder{routes: newRing[routeEntry](history), calls: newRing[callEntry](history), closed: newRing[Closed](history)}
}

func (r *recorder) ConnectionOpened(local.ConnectionInfo) {
	r.mu.Lock()
	r.totals.Opened++
	r.mu.Unlock()
}

func (r *recorder) ConnectionClosed(c local.ConnectionInfo, code int, reason string) {
	r.mu.Lock()
	r.totals.Closed++
	r.closed.add(Closed{Time: time.Now(), ConnectionID: c.ConnectionID, ConnectedAt: c.ConnectedAt, Code: code, Reason: reason})
	r.mu.Unlock()
}

func (r *recorder) RouteInvoked(ri local.RouteInvocation) {
	v := routeEntry{Route: Route{
		Time: ri.Start, RouteKey: ri.RouteKey, ConnectionID: ri.ConnectionID, RequestID: ri.RequestID,
		Status: ri.Status, LatencyMS: ms(ri.Duration), Bytes: ri.Bytes,
	}, event: ri.Event, response: ri.Response}
	if ri.Err != nil {
		// The console is for the developer of this app on loopback: the
		// handler's own error text is what they would read in the logs.
		v.Error = ri.Err.Error()
	}
	r.mu.Lock()
	r.totals.Routes++
	v.Seq = uint64(r.totals.Routes)
	r.routes.add(v)
	r.mu.Unlock()
}

func (r *recorder) ManagementCalled(mc local.ManagementCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.totals.Management++
	// In place: a callEntry is too large to build on the stack and copy.
	e := r.calls.slot()
	e.Call = Call{
		Seq: uint64(r.totals.Management), Time: mc.Start, Method: mc.Method, ConnectionID: mc.ConnectionID,
		Status: mc.Status, ErrorType: mc.ErrorType, LatencyMS: ms(mc.Duration), Bytes: mc.Bytes,
	}
	e.bodyLen = copy(e.body[:], mc.Body)
}

func (r *recorder) snapshot() (routes []Route, calls []Call, closed []Closed, totals Totals) {
	r.mu.Lock()
	defer r.mu.Unlock()
	routes, calls = []Route{}, []Call{}
	r.routes.eachRef(func(e *routeEntry) { routes = append(routes, e.Route) })
	r.calls.eachRef(func(e *callEntry) { calls = append(calls, e.Call) })
	return routes, calls, r.closed.newestFirst(), r.totals
}

// route finds invocation seq in the history.
func (r *recorder) route(seq uint64) (routeEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found routeEntry
	ok := false
	r.routes.eachRef(func(e *routeEntry) {
		if e.Seq == seq {
			found, ok = *e, true
		}
	})
	return found, ok
}

// call finds call seq in the history, with a copy of its kept body.
func (r *recorder) call(seq uint64) (Call, []byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		found Call
		body  []byte
		ok    bool
	)
	r.calls.eachRef(func(e *callEntry) {
		if e.Seq == seq {
			found, body, ok = e.Call, append([]byte(nil), e.body[:e.bodyLen]...), true
		}
	})
	return found, body, ok
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
