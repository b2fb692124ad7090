package devui

import (
	"sync"
	"time"

	"github.com/streamer-go/streamer/runtime/local"
)

// DefaultHistory is how many route invocations, @connections calls and
// closed connections the console keeps by default.
const DefaultHistory = 200

// Route is one route invocation as the console shows it.
type Route struct {
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

// recorder is the UI's local.Observer: it only appends to bounded rings
// under a mutex, so the gateway's goroutines never wait on the console.
type recorder struct {
	mu     sync.Mutex
	routes ring[Route]
	calls  ring[Call]
	closed ring[Closed]
	totals Totals
}

var _ local.Observer = (*recorder)(nil)

func newRecorder(history int) *recorder {
	return &recorder{routes: newRing[Route](history), calls: newRing[Call](history), closed: newRing[Closed](history)}
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
	v := Route{
		Time: ri.Start, RouteKey: ri.RouteKey, ConnectionID: ri.ConnectionID, RequestID: ri.RequestID,
		Status: ri.Status, LatencyMS: ms(ri.Duration), Bytes: ri.Bytes,
	}
	if ri.Err != nil {
		// The console is for the developer of this app on loopback: the
		// handler's own error text is what they would read in the logs.
		v.Error = ri.Err.Error()
	}
	r.mu.Lock()
	r.totals.Routes++
	r.routes.add(v)
	r.mu.Unlock()
}

func (r *recorder) ManagementCalled(mc local.ManagementCall) {
	v := Call{
		Time: mc.Start, Method: mc.Method, ConnectionID: mc.ConnectionID, Status: mc.Status,
		ErrorType: mc.ErrorType, LatencyMS: ms(mc.Duration), Bytes: mc.Bytes,
	}
	r.mu.Lock()
	r.totals.Management++
	r.calls.add(v)
	r.mu.Unlock()
}

func (r *recorder) snapshot() (routes []Route, calls []Call, closed []Closed, totals Totals) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.routes.newestFirst(), r.calls.newestFirst(), r.closed.newestFirst(), r.totals
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
