package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// serveUpgrade runs one connection from the upgrade request to $disconnect:
// $connect and the upgrade here, then the connection's reader goroutine,
// so each connection costs one goroutine (plus a writer only while
// messages are queued).
func (g *Gateway) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if !isWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		writeAPIError(w, http.StatusUpgradeRequired, "BadRequestException", "WebSocket upgrade required")
		return
	}
	// The origin is checked before $connect runs, so a refused browser
	// never reaches the application; Accept checks it again.
	if err := checkOrigin(r, g.origins); err != nil {
		g.log.Info("local: origin refused", "origin", r.Header.Get("Origin"), "err", err)
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return
	}
	// AWS_IAM on $connect: the upgrade request's signature, before the
	// connection counts or $connect runs.
	var identity *iamIdentity
	if g.connectSig != nil {
		if identity = g.authorizeIAM(w, r); identity == nil {
			return
		}
	}

	now := time.Now()
	c := &conn{
		g:           g,
		connectedAt: now,
		sourceIP:    sourceIP(r),
		userAgent:   r.UserAgent(),
	}
	c.lastActive.Store(now.UnixNano())
	if !g.admit(c) {
		writeAPIError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "Service Unavailable")
		return
	}
	// The connection's context outlives the upgrade request's, and ends
	// when the connection ends or Close stops the gateway.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c.setCancel(cancel)
	handedOff := false
	defer func() {
		if !handedOff {
			cancel()
			g.release(c)
		}
	}()
	log := g.log.With("connectionId", c.id)

	subprotocol := ""
	if h, ok := g.routes[RouteConnect]; ok {
		reqID := g.newRequestID()
		ev := g.connectEvent(c, r, reqID, now)
		if identity != nil {
			identity.fill(&ev.RequestContext.Identity)
		}
		resp, err := g.invoke(ctx, h, ev, 0)
		if err != nil {
			log.Error("local: $connect handler failed", "requestId", reqID, "err", err)
			if errors.Is(err, context.DeadlineExceeded) {
				// API Gateway's answer to an integration that ran past
				// its timeout (its INTEGRATION_TIMEOUT response).
				writeAPIError(w, http.StatusGatewayTimeout, "", "Endpoint request timed out")
				return
			}
			writeAPIError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			log.Info("local: $connect refused", "requestId", reqID, "status", resp.StatusCode)
			writeRefusal(w, resp.StatusCode, resp.Body)
			return
		}
		subprotocol = headerValue(resp.Headers, resp.MultiValueHeaders, "Sec-WebSocket-Protocol")
	}

	opts := &websocket.AcceptOptions{
		CompressionMode: websocket.CompressionDisabled,
		OnPingReceived: func(context.Context, []byte) bool {
			c.touchInbound()
			return true
		},
	}
	if subprotocol != "" {
		// API Gateway lets $connect pick the subprotocol through its
		// Sec-WebSocket-Protocol response header.
		opts.Subprotocols = []string{subprotocol}
	}
	if len(g.origins) == 1 && g.origins[0] == "*" {
		opts.InsecureSkipVerify = true
	} else {
		opts.OriginPatterns = g.origins
	}
	// Reachable through @connections from just before the 101 goes out:
	// a backend told "connected" may post at once. Messages posted before
	// the upgrade finishes wait in the queue.
	if !g.track(c) {
		writeAPIError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "Service Unavailable")
		g.disconnect(ctx, c, websocket.StatusGoingAway, reasonGoingAway)
		return
	}
	hw := &hijackRecorder{ResponseWriter: w}
	ws, err := websocket.Accept(hw, r, opts)
	if err != nil {
		// $connect accepted this connection, so the application may have
		// stored it: $disconnect tells it the connection is gone.
		log.Info("local: upgrade failed", "err", err)
		c.abandon()
		g.disconnect(ctx, c, websocket.StatusAbnormalClosure, "")
		return
	}
	ws.SetReadLimit(int64(g.cfg.MessageLimit))
	// The timers exist before attach: a close requested during the
	// upgrade starts there, and its handshake reads frames, so a ping may
	// reset the idle timer (touchInbound) before the reader runs. A timer
	// that fires first is a close requested during the upgrade.
	c.startTimers(g.cfg.IdleTimeout, g.cfg.MaxLifetime)
	c.attach(ctx, ws, hw.conn)
	log.Debug("local: connected", "sourceIp", c.sourceIP)
	if g.obs != nil {
		g.obs.ConnectionOpened(c.info())
	}
	// The reader is a fresh goroutine so that this one, its deep net/http
	// stack and the upgrade request it holds are freed: about a third of
	// an idle connection's memory. It still counts in g.wg (admit).
	handedOff = true
	go func() {
		defer g.release(c)
		defer cancel()
		g.readLoop(ctx, c)
	}()
}

// isWebSocketUpgrade reports whether r asks for a WebSocket upgrade. It is
// checked before $connect so a plain GET never runs the application.
func isWebSocketUpgrade(r *http.Request) bool {
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// originPatterns returns the patterns Accept gets, with the localhost
// default, after checking they parse.
func originPatterns(allowed []string) ([]string, error) {
	if len(allowed) == 0 {
		// Brackets are pattern syntax in path.Match, hence the escapes.
		return []string{"localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*", `\[::1\]`, `\[::1\]:*`}, nil
	}
	for _, p := range allowed {
		if p == "*" {
			if len(allowed) > 1 {
				return nil, fmt.Errorf("%w: allowed origin \"*\" must stand alone", ErrInvalidConfig)
			}
			return []string{"*"}, nil
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%w: allowed origin %q: %v", ErrInvalidConfig, p, err)
		}
	}
	return allowed, nil
}

// checkOrigin applies the same rule as coder/websocket's Accept (which has
// no exported form of it): no Origin or the request's own host passes,
// otherwise a pattern must match the origin's host, or scheme://host when
// the pattern has a scheme.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" || (len(patterns) == 1 && patterns[0] == "*") {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("local: bad Origin %q: %w", origin, err)
	}
	if strings.EqualFold(r.Host, u.Host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return fmt.Errorf("local: origin %q not allowed", origin)
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func headerValue(single map[string]string, multi map[string][]string, name string) string {
	for k, v := range single {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range multi {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// hijackRecorder keeps the net.Conn that websocket.Accept hijacks, so a
// close handshake that a silent client never answers can drop the socket
// itself (see closeSocket): coder/websocket gives no other way to end its
// handshake's own 5 s wait before the connection's reader has started.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("local: the ResponseWriter cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	h.conn = conn
	return conn, brw, err
}
