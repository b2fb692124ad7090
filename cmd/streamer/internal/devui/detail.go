package devui

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// MaxShownBody is how much of a message, an answer or a posted body the
// detail view shows; the rest is counted.
const MaxShownBody = 2048

// Redacted replaces what the detail view never shows: credentials.
const Redacted = "[redacted]"

// Headers and query parameters that carry credentials, lower case.
var (
	secretHeaders = map[string]bool{
		"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
		"x-amz-security-token": true, "x-api-key": true,
	}
	secretParams = map[string]bool{
		"token": true, "access_token": true, "id_token": true, "auth": true, "authorization": true,
		"x-amz-signature": true, "x-amz-security-token": true, "x-amz-credential": true,
	}
	// jwtLike is a JSON Web Token anywhere in a text (a message body, a
	// subprotocol header): three base64url parts, the first a JSON object.
	jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
)

// Shown is a body as the detail view shows it: at most MaxShownBody bytes,
// tokens redacted, and its full size.
type Shown struct {
	Text      string `json:"text"`
	Bytes     int    `json:"bytes"`
	Truncated bool   `json:"truncated,omitempty"`
}

func show(b string) Shown {
	s := Shown{Bytes: len(b)}
	if len(b) > MaxShownBody {
		// A rune cut at the end is dropped.
		b, s.Truncated = strings.ToValidUTF8(b[:MaxShownBody], ""), true
	}
	s.Text = redactText(b)
	return s
}

func redactText(s string) string { return jwtLike.ReplaceAllString(s, Redacted) }

// RouteDetail is one route invocation in full: GET
// /_console/api/routes/{seq}.
type RouteDetail struct {
	Route
	// Event is the event the handler got, as JSON, with credentials
	// redacted and its body cut to MaxShownBody (EventBody has its size).
	Event     json.RawMessage `json:"event"`
	EventBody Shown           `json:"eventBody"`
	// Response is what the handler answered (status and body; an error
	// is in Route.Error).
	Response ResponseView `json:"response"`
}

// ResponseView is a handler's answer as the detail view shows it.
type ResponseView struct {
	StatusCode int      `json:"statusCode"`
	Body       Shown    `json:"body"`
	Headers    []string `json:"headers,omitempty"`
}

// CallDetail is one @connections call in full: GET
// /_console/api/calls/{seq}. Body is what was posted, as far as the
// console kept it (MaxKeptBody).
type CallDetail struct {
	Call
	Body Shown `json:"body"`
}

// RouteDetail returns invocation seq while it is in the history.
func (ui *UI) RouteDetail(seq uint64) (RouteDetail, bool) {
	e, ok := ui.rec.route(seq)
	if !ok {
		return RouteDetail{}, false
	}
	ev := redactEvent(e.event)
	d := RouteDetail{Route: e.Route, EventBody: show(e.event.Body)}
	ev.Body = d.EventBody.Text
	if d.EventBody.Truncated {
		ev.Body += "…"
	}
	b, err := json.Marshal(ev)
	if err != nil {
		b = []byte(strconv.Quote("event not encodable: " + err.Error()))
	}
	d.Event = json.RawMessage(redactText(string(b)))
	d.Response = ResponseView{StatusCode: e.response.StatusCode, Body: show(e.response.Body)}
	for k, v := range e.response.Headers {
		if secretHeaders[strings.ToLower(k)] {
			v = Redacted
		}
		d.Response.Headers = append(d.Response.Headers, k+": "+redactText(v))
	}
	return d, true
}

// CallDetail returns call seq while it is in the history.
func (ui *UI) CallDetail(seq uint64) (CallDetail, bool) {
	c, body, ok := ui.rec.call(seq)
	if !ok {
		return CallDetail{}, false
	}
	d := CallDetail{Call: c, Body: show(string(body))}
	d.Body.Bytes = c.Bytes
	d.Body.Truncated = d.Body.Truncated || c.Bytes > len(body)
	return d, true
}

// redactEvent copies ev with the values of credential headers and query
// parameters replaced; the maps are new, so the recorded event (shared
// with nobody else once recorded) stays as it was.
func redactEvent(ev events.APIGatewayWebsocketProxyRequest) events.APIGatewayWebsocketProxyRequest {
	ev.Headers = redactMap(ev.Headers, secretHeaders)
	ev.MultiValueHeaders = redactMulti(ev.MultiValueHeaders, secretHeaders)
	ev.QueryStringParameters = redactMap(ev.QueryStringParameters, secretParams)
	ev.MultiValueQueryStringParameters = redactMulti(ev.MultiValueQueryStringParameters, secretParams)
	return ev
}

func redactMap(m map[string]string, secret map[string]bool) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if secret[strings.ToLower(k)] {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

func redactMulti(m map[string][]string, secret map[string]bool) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, vs := range m {
		if secret[strings.ToLower(k)] {
			vs = []string{Redacted}
		}
		out[k] = vs
	}
	return out
}

// serveDetail answers GET /_console/api/routes/{seq} and
// /_console/api/calls/{seq}; 404 once the item left the history.
func (ui *UI) serveDetail(w http.ResponseWriter, r *http.Request, kind, rest string) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		http.Error(w, "bad sequence number", http.StatusBadRequest)
		return
	}
	var (
		v  any
		ok bool
	)
	if kind == "routes" {
		v, ok = ui.RouteDetail(seq)
	} else {
		v, ok = ui.CallDetail(seq)
	}
	if !ok {
		http.Error(w, "no longer in the console's history", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
