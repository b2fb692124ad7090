package local

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// isoMillis is the ISO-8601 form GET @connections uses for its times.
const isoMillis = "2006-01-02T15:04:05.000Z"

// connectionInfo is GET @connections/{id}'s body.
type connectionInfo struct {
	ConnectedAt  string             `json:"connectedAt"`
	Identity     connectionIdentity `json:"identity"`
	LastActiveAt string             `json:"lastActiveAt"`
}

type connectionIdentity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// serveManagement answers POST, GET and DELETE /{stage}/@connections/{id}
// like API Gateway's management API, and tells the Observer.
func (g *Gateway) serveManagement(w http.ResponseWriter, r *http.Request, escapedID string) {
	// Unescaped once, here: an ID without '%' (every ID this gateway
	// hands out) costs no allocation.
	id, idErr := url.PathUnescape(escapedID)
	if g.obs == nil {
		g.answerManagement(w, r, id, idErr)
		return
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	body := &bodyCapture{ReadCloser: r.Body}
	r.Body = body
	size := g.answerManagement(rec, r, id, idErr)
	call := ManagementCall{
		Method:   r.Method,
		Start:    start,
		Duration: time.Since(start),
		Status:   rec.status,
		Bytes:    size,
		Body:     body.read,
	}
	if call.Status == 0 {
		call.Status = http.StatusOK
	}
	if idErr == nil {
		call.ConnectionID = id
	}
	if call.Status >= 400 {
		call.ErrorType = rec.Header().Get("X-Amzn-Errortype")
	}
	g.obs.ManagementCalled(call)
}

// answerManagement does serveManagement's work for the connection id
// (idErr when its escaped form was invalid) and returns the size of the
// POST body (as far as it was read, or as announced when too large).
func (g *Gateway) answerManagement(w http.ResponseWriter, r *http.Request, id string, idErr error) (size int) {
	if idErr != nil || id == "" {
		writeAPIError(w, http.StatusBadRequest, "BadRequestException", "Invalid connection ID")
		return
	}
	var (
		body []byte
		err  error
	)
	if r.Method == http.MethodPost {
		if r.ContentLength > int64(g.cfg.MessageLimit) {
			size = int(r.ContentLength)
			drainBody(r.Body, g.cfg.MessageLimit)
			writeAPIError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Message too long")
			return
		}
		body, err = readBody(r, g.cfg.MessageLimit)
		size = len(body)
		if isTimeout(err) {
			g.log.Warn("local: management request refused: body not received in time", "timeout", g.cfg.BodyTimeout, "received", len(body), "announced", r.ContentLength, "remote", r.RemoteAddr)
			w.Header().Set("Connection", "close")
			writeAPIError(w, http.StatusRequestTimeout, "BadRequestException", "Request body not received in time")
			return
		}
		if err != nil {
			writeAPIError(w, http.StatusBadRequest, "BadRequestException", "Could not read the request body")
			return
		}
		if len(body) > g.cfg.MessageLimit {
			drainBody(r.Body, g.cfg.MessageLimit)
			writeAPIError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Message too long")
			return
		}
	}
	if !g.authorizeManagement(w, r, body) {
		return
	}

	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return
	}
	if !g.admitRequest(w) {
		return
	}
	g.injectLatency(r.Context())
	c := g.lookup(id)
	if c == nil {
		writeAPIError(w, http.StatusGone, "GoneException", "")
		return
	}
	if !g.injectOnConnection(w, r, c) {
		return
	}
	switch r.Method {
	case http.MethodPost:
		// A caller that gave up before its message was queued (it timed
		// out, or went away) is answered nothing, and the message is not
		// delivered: the caller may already have sent what follows it.
		if r.Context().Err() != nil {
			return size
		}
		// Text stays text: API Gateway sends a body that is valid UTF-8 as
		// a text frame and anything else as binary.
		typ := websocket.MessageBinary
		if isText(body) {
			typ = websocket.MessageText
		}
		switch err := c.enqueue(r.Context(), typ, body); {
		case errors.Is(err, errQueueFull):
			writeAPIError(w, http.StatusTooManyRequests, "LimitExceededException", "Limit exceeded: the client's outbound buffer is full")
		case err != nil:
			writeAPIError(w, http.StatusGone, "GoneException", "")
		default:
			w.WriteHeader(http.StatusOK)
		}
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(connectionInfo{
			ConnectedAt:  c.connectedAt.UTC().Format(isoMillis),
			Identity:     connectionIdentity{SourceIP: c.sourceIP, UserAgent: c.userAgent},
			LastActiveAt: time.Unix(0, c.lastActive.Load()).UTC().Format(isoMillis),
		})
	case http.MethodDelete:
		c.closeWith(deleteCode, deleteReason)
		w.WriteHeader(http.StatusNoContent)
	}
	return size
}

// readBody reads a POST body of at most limit+1 bytes (on an
// error, what was read before it). A body
// of announced length (what every SDK sends) is read into one buffer of
// exactly its size: io.ReadAll starts at 512 bytes and grows, which for
// a fan-out is a wasted allocation, or several, per subscriber.
func readBody(r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength < 0 || r.ContentLength > int64(limit) {
		return io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	}
	body := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, body)
	return body[:n], err
}

// apiError is the management API's error body; X-Amzn-Errortype names the
// type, which is how the SDK picks *types.GoneException and the others.
type apiError struct {
	Message *string `json:"message"`
}

func writeAPIError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if errType != "" {
		w.Header().Set("X-Amzn-Errortype", errType)
	}
	w.WriteHeader(status)
	var m *string
	if msg != "" {
		m = &msg
	}
	// API Gateway sends {"message":null} with a 410.
	_ = json.NewEncoder(w).Encode(apiError{Message: m})
}

// writeRefusal answers an upgrade that $connect refused with the handler's
// status and body.
func writeRefusal(w http.ResponseWriter, status int, body string) {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	if body == "" {
		writeAPIError(w, status, errorTypeForStatus(status), http.StatusText(status))
		return
	}
	w.Header().Set("X-Amzn-Errortype", errorTypeForStatus(status))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func errorTypeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "UnauthorizedException"
	case status == http.StatusForbidden:
		return "ForbiddenException"
	case status == http.StatusNotFound:
		return "NotFoundException"
	case status == http.StatusTooManyRequests:
		return "LimitExceededException"
	case status >= 500:
		return "InternalServerErrorException"
	default:
		return "BadRequestException"
	}
}

// isText reports whether a posted body goes out as a text frame: the
// management API carries raw bytes, so valid UTF-8 is text and anything
// else binary.
func isText(b []byte) bool { return utf8.Valid(b) }

// authorizeManagement checks a management request's signature (with
// VerifySignatures or VerifyCredentials) or, on an exposed gateway, its
// access token or a signature that stands in for it. It answers the
// refusal and reports whether r may go on.
func (g *Gateway) authorizeManagement(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if g.sig != nil {
		if err := g.sig.verify(r.Context(), r, body, time.Now()); err != nil {
			g.log.Info("local: management request refused", "err", err)
			g.writeSignatureError(w, err)
			return false
		}
		return true
	}
	if g.cfg.AccessToken == "" || hasToken(r, g.cfg.AccessToken) {
		return true
	}
	if err := g.tokenSig.verify(r.Context(), r, body, time.Now()); err != nil {
		g.log.Warn("local: management request refused: no access token and no valid signature", "remote", r.RemoteAddr, "err", err)
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden: this server is exposed; sign the request with the local secret or pass the token printed at start")
		return false
	}
	return true
}
