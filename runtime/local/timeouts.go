package local

import (
	"errors"
	"net/http"
	"os"
	"time"
)

// The timeouts of the gateway's HTTP side, the same on every server that
// shares its rules (the gateway's own, and a page, console or /metrics
// server configured with ServerTimeouts). A client that sends slowly or
// not at all holds a goroutine and a socket for at most these.
const (
	// HeaderTimeout bounds the reading of a request's headers.
	HeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds the reading of a request's body, counted
	// from the end of its headers (Config.BodyTimeout).
	DefaultBodyTimeout = 10 * time.Second
	// KeepAliveTimeout closes a keep-alive connection that has waited this
	// long for its next request. It is longer than the 90 s after which
	// the AWS SDKs' and Streamer's own clients drop an idle pooled
	// connection, so a pooled connection is always closed by its client
	// first and never by the server under a request just sent.
	KeepAliveTimeout = 2 * time.Minute
)

// ServerTimeouts sets HeaderTimeout and KeepAliveTimeout on srv, for a
// server that shares the gateway's rules; Guard adds the body deadline.
func ServerTimeouts(srv *http.Server) *http.Server {
	srv.ReadHeaderTimeout = HeaderTimeout
	srv.IdleTimeout = KeepAliveTimeout
	return srv
}

// bodyDeadline sets the read deadline of r's body: a body that has not
// arrived within Config.BodyTimeout of the headers fails to read. A
// WebSocket upgrade, whose connection outlives the request, and a request
// without a body are left alone.
func (g *Gateway) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || isWebSocketUpgrade(r) {
		return
	}
	// A ResponseWriter that cannot set deadlines (a test recorder) leaves
	// the body unbounded.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.cfg.BodyTimeout))
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
