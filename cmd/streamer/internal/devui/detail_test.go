package devui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/cmd/streamer/internal/devui"
)

const testJWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"

// TestDetailShowsEventAndResponseWithoutCredentials: a route invocation's
// detail is the event the handler got and what it answered, with the
// token of the query string, the Authorization header and a JWT inside a
// message redacted, and a long body cut to MaxShownBody.
func TestDetailShowsEventAndResponseWithoutCredentials(t *testing.T) {
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.base, "http")+"/dev?token="+testJWT+"&room=blue",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testJWT}, "X-Api-Key": {"k-123"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	long := `{"action":"x","token":"` + testJWT + `","pad":"` + strings.Repeat("é", 2000) + `"}`
	if err := c.Write(ctx, websocket.MessageText, []byte(long)); err != nil {
		t.Fatal(err)
	}
	st := s.waitState(t, "$connect and the message", func(st devui.State) bool { return len(st.Routes) == 2 })
	connect, message := st.Routes[1], st.Routes[0]
	if connect.RouteKey != "$connect" || message.RouteKey != "$default" || connect.Seq != 1 || message.Seq != 2 {
		t.Fatalf("routes %+v", st.Routes)
	}

	var d devui.RouteDetail
	detail(t, s, "routes", connect.Seq, &d)
	raw := string(d.Event)
	if strings.Contains(raw, testJWT) || strings.Contains(raw, "k-123") {
		t.Errorf("the $connect event shows a credential:\n%s", raw)
	}
	var ev struct {
		Headers map[string]string `json:"headers"`
		Query   map[string]string `json:"queryStringParameters"`
		Context struct {
			RouteKey     string `json:"routeKey"`
			ConnectionID string `json:"connectionId"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(d.Event, &ev); err != nil {
		t.Fatalf("event is not JSON: %v\n%s", err, raw)
	}
	if ev.Headers["Authorization"] != devui.Redacted || ev.Headers["X-Api-Key"] != devui.Redacted || ev.Query["token"] != devui.Redacted {
		t.Errorf("credentials not redacted: headers %v, query %v", ev.Headers, ev.Query)
	}
	if ev.Query["room"] != "blue" || ev.Context.RouteKey != "$connect" || ev.Context.ConnectionID != connect.ConnectionID {
		t.Errorf("the rest of the event is not shown as it was: %+v", ev)
	}
	if d.Response.StatusCode != 200 || d.LatencyMS <= 0 {
		t.Errorf("response %+v, latency %v", d.Response, d.LatencyMS)
	}

	detail(t, s, "routes", message.Seq, &d)
	if d.EventBody.Bytes != len(long) || !d.EventBody.Truncated || len(d.EventBody.Text) > devui.MaxShownBody || strings.Contains(d.EventBody.Text, testJWT) || !strings.Contains(d.EventBody.Text, devui.Redacted) {
		t.Errorf("message body shown as %d bytes of %d (truncated %v), want at most %d with the JWT redacted:\n%.200s",
			len(d.EventBody.Text), d.EventBody.Bytes, d.EventBody.Truncated, devui.MaxShownBody, d.EventBody.Text)
	}
	if strings.Contains(string(d.Event), testJWT) || !strings.Contains(string(d.Event), `"body":"{\"action\":\"x\"`) {
		t.Errorf("event body:\n%.300s", d.Event)
	}

	// Gone from the history (History 5): 404.
	for range 6 {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"y"}`)); err != nil {
			t.Fatal(err)
		}
	}
	s.waitState(t, "the history moved on", func(st devui.State) bool { return st.Totals.Routes >= 8 })
	if code, _, _ := get(t, s.base+"/_console/api/routes/1"); code != http.StatusNotFound {
		t.Errorf("detail of an invocation out of the history: %d, want 404", code)
	}
	if code, _, _ := get(t, s.base+"/_console/api/routes/x"); code != http.StatusBadRequest {
		t.Errorf("detail of a bad seq: %d, want 400", code)
	}
}

// TestDetailOfACallShowsThePostedBody: an @connections POST's detail is
// its body (the start of it, MaxKeptBody, with its full size), JWTs
// redacted; a DELETE has none.
func TestDetailOfACallShowsThePostedBody(t *testing.T) {
	s := newStack(t)
	s.dial(t)
	st := s.waitState(t, "the connection", func(st devui.State) bool { return len(st.Connections) == 1 })
	id := st.Connections[0].ConnectionID
	post := func(body string) {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/dev/@connections/"+id, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post(`{"hello":"` + testJWT + `"}`)
	big := strings.Repeat("z", 5000)
	post(big)
	st = s.waitState(t, "two calls", func(st devui.State) bool { return len(st.Management) == 2 })

	var d devui.CallDetail
	detail(t, s, "calls", st.Management[1].Seq, &d)
	if d.Method != "POST" || d.Status != 200 || d.Body.Text != `{"hello":"`+devui.Redacted+`"}` || d.Body.Truncated {
		t.Errorf("first call %+v", d)
	}
	detail(t, s, "calls", st.Management[0].Seq, &d)
	if d.Body.Bytes != 5000 || !d.Body.Truncated || d.Body.Text != big[:devui.MaxKeptBody] {
		t.Errorf("a 5000-byte body: shown %d of %d, truncated %v", len(d.Body.Text), d.Body.Bytes, d.Body.Truncated)
	}
}

// TestFaviconIsNotForbidden: browsers ask for /favicon.ico unasked; it is
// answered here, not refused by the gateway.
func TestFaviconIsNotForbidden(t *testing.T) {
	s := newStack(t)
	if code, _, _ := get(t, s.base+"/favicon.ico"); code != http.StatusNoContent {
		t.Errorf("/favicon.ico: %d, want 204", code)
	}
	if code, h, _ := get(t, s.base+"/_ui/favicon.svg"); code != 200 || !strings.Contains(h.Get("Content-Type"), "svg") {
		t.Errorf("/_ui/favicon.svg: %d %q", code, h.Get("Content-Type"))
	}
}

func detail(t *testing.T, s *stack, kind string, seq uint64, v any) {
	t.Helper()
	code, _, body := get(t, s.base+"/_console/api/"+kind+"/"+strconv.FormatUint(seq, 10))
	if code != 200 {
		t.Fatalf("detail %s/%d: %d %s", kind, seq, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("detail %s/%d: %v\n%s", kind, seq, err, body)
	}
}
