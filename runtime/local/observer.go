package local

import (
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Observer sees what the gateway does: connections opening and closing,
// every route invocation and every @connections call. Dev consoles and
// metrics are built on it; the gateway itself neither needs nor keeps this
// history. Set it as Config.Observer, and combine several with
// JoinObservers.
//
// The methods are called synchronously on the goroutine doing the work,
// concurrently for different connections and for one connection's
// messages, which are handled concurrently (see Config.MaxMessagesInFlight):
// an observer must be safe for concurrent use. A connection's message
// invocations are reported after its ConnectionOpened; one still running
// when the connection closes is reported after ConnectionClosed. The
// methods must be fast and must not block, and they must not call back
// into the Gateway.
type Observer interface {
	// ConnectionOpened is called once the upgrade is done, after $connect
	// accepted the connection.
	ConnectionOpened(ConnectionInfo)
	// ConnectionClosed is called once for each opened connection, after
	// its $disconnect ran (or would have, when the app has none), with the
	// close code and reason $disconnect was given.
	ConnectionClosed(info ConnectionInfo, code int, reason string)
	// RouteInvoked is called after every handler call: $connect,
	// $disconnect and message routes, refused or failed ones included.
	RouteInvoked(RouteInvocation)
	// ManagementCalled is called after every @connections request was
	// answered.
	ManagementCalled(ManagementCall)
}

// ConnectionInfo is one connection as the gateway knows it: what GET
// @connections answers. Identity beyond the source IP and user agent is
// the application's (its connection store).
type ConnectionInfo struct {
	ConnectionID string
	SourceIP     string
	UserAgent    string
	ConnectedAt  time.Time
	// LastActiveAt is the time of the last message in either direction.
	LastActiveAt time.Time
}

// RouteInvocation is one handler call.
type RouteInvocation struct {
	// RouteKey is "$connect", "$disconnect", "$default" or a custom key.
	RouteKey     string
	ConnectionID string
	// RequestID is the event's requestContext.requestId.
	RequestID string
	Start     time.Time
	Duration  time.Duration
	// Status is the handler's statusCode (200 when it left it zero), or
	// 500 when it returned an error, panicked or ran past the integration
	// timeout.
	Status int
	// Err is the handler's error, if any.
	Err error
	// Bytes is the size of the inbound message; 0 for $connect and
	// $disconnect.
	Bytes int
	// Event is the event the handler was given and Response what it
	// returned, as they are: a console that shows them redacts tokens
	// (headers, query string) itself. An observer must not modify them.
	Event    events.APIGatewayWebsocketProxyRequest
	Response events.APIGatewayProxyResponse
}

// ManagementCall is one @connections request.
type ManagementCall struct {
	// Method is POST, GET or DELETE (or whatever else a client sent).
	Method string
	// ConnectionID is the unescaped ID from the path; empty when it was
	// not valid.
	ConnectionID string
	Start        time.Time
	Duration     time.Duration
	// Status is the HTTP status answered: 200, 204, 403, 410, 413, 429...
	Status int
	// ErrorType is the X-Amzn-Errortype of an error answer, such as
	// "GoneException"; empty on success.
	ErrorType string
	// Bytes is the size of a POST's body.
	Bytes int
	// Body is the POST's body as far as the gateway read it (nil for GET
	// and DELETE). It is only valid during the call: an observer that
	// keeps it copies it.
	Body []byte
}

// JoinObservers returns an Observer that passes each event to every one of
// obs, in order. Nil observers are skipped.
func JoinObservers(obs ...Observer) Observer {
	out := make(observers, 0, len(obs))
	for _, o := range obs {
		switch o := o.(type) {
		case nil:
		case observers:
			out = append(out, o...)
		default:
			out = append(out, o)
		}
	}
	return out
}

type observers []Observer

func (os observers) ConnectionOpened(c ConnectionInfo) {
	for _, o := range os {
		o.ConnectionOpened(c)
	}
}

func (os observers) ConnectionClosed(c ConnectionInfo, code int, reason string) {
	for _, o := range os {
		o.ConnectionClosed(c, code, reason)
	}
}

func (os observers) RouteInvoked(r RouteInvocation) {
	for _, o := range os {
		o.RouteInvoked(r)
	}
}

func (os observers) ManagementCalled(m ManagementCall) {
	for _, o := range os {
		o.ManagementCalled(m)
	}
}

// Connections lists the open connections, those the management API can
// reach, oldest first.
func (g *Gateway) Connections() []ConnectionInfo {
	g.mu.Lock()
	out := make([]ConnectionInfo, 0, len(g.conns))
	for _, c := range g.conns {
		out = append(out, c.info())
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ConnectedAt.Equal(out[j].ConnectedAt) {
			return out[i].ConnectedAt.Before(out[j].ConnectedAt)
		}
		return out[i].ConnectionID < out[j].ConnectionID
	})
	return out
}

func (c *conn) info() ConnectionInfo {
	return ConnectionInfo{
		ConnectionID: c.id,
		SourceIP:     c.sourceIP,
		UserAgent:    c.userAgent,
		ConnectedAt:  c.connectedAt,
		LastActiveAt: time.Unix(0, c.lastActive.Load()),
	}
}

// statusRecorder remembers the status a management answer was given, for
// ManagementCalled.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// bodyCapture keeps what is read of a management request's body, for
// ManagementCall.Body. The gateway reads a body into one buffer, so read
// is that buffer's filled part, extended read by read, not a copy; reads
// into another buffer are appended.
type bodyCapture struct {
	io.ReadCloser
	read []byte
}

func (b *bodyCapture) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case n == 0:
	case b.read == nil:
		b.read = p[:n:len(p)]
	case len(b.read) < cap(b.read) && &b.read[:len(b.read)+1][len(b.read)] == &p[0]:
		b.read = b.read[:len(b.read)+n]
	case len(b.read)+n <= MaxMessageBytes:
		b.read = append(b.read[:len(b.read):len(b.read)], p[:n]...)
	}
	return n, err
}
