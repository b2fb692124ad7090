package local_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// keysOf returns the JSON keys of v at the top level, in requestContext and
// in requestContext.identity, as "a", "requestContext.b", ...
func keysOf(t *testing.T, raw []byte) map[string]bool {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for k, v := range m {
		out[k] = true
		if k != "requestContext" {
			continue
		}
		for k2, v2 := range v.(map[string]any) {
			out["requestContext."+k2] = true
			if k2 == "identity" {
				for k3 := range v2.(map[string]any) {
					out["requestContext.identity."+k3] = true
				}
			}
		}
	}
	return out
}

func sorted(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// restOnly are keys of the $connect sample that belong to REST API proxy
// events (the sample is shared with them) and that a WebSocket $connect
// from API Gateway does not carry.
var restOnly = map[string]bool{
	"resource": true, "path": true, "httpMethod": true, "body": true, "pathParameters": true, "stageVariables": true,
	"requestContext.accountId": true, "requestContext.resourceId": true, "requestContext.resourcePath": true,
	"requestContext.authorizer": true, "requestContext.httpMethod": true, "requestContext.error": true,
	"requestContext.integrationLatency": true, "requestContext.status": true,
}

// TestEventsHaveTheKeysOfAWSSamples compares the JSON keys of the
// gateway's events with real API Gateway events (testdata/, from
// aws-lambda-go): the same keys for MESSAGE and DISCONNECT, and every
// WebSocket key of the CONNECT sample.
func TestEventsHaveTheKeysOfAWSSamples(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, _, err := websocket.Dial(ctxT(t), gw.URL()+"?name=me", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctxT(t), websocket.MessageText, []byte("{\r\n\t\"a\": 1\r\n}")); err != nil {
		t.Fatal(err)
	}
	msg := next(t, rec.messages)
	c.Close(websocket.StatusGoingAway, "")
	got := map[string]events.APIGatewayWebsocketProxyRequest{
		"apigw-websocket-request.json":              next(t, rec.connects),
		"apigw-websocket-request-send-message.json": msg,
		"apigw-websocket-request-disconnect.json":   next(t, rec.discs),
	}
	for file, ev := range got {
		sample, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		ours, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		want, have := keysOf(t, sample), keysOf(t, ours)
		for _, k := range sorted(want) {
			identityExtra := len(k) > len("requestContext.identity.") && k[:len("requestContext.identity.")] == "requestContext.identity." &&
				k != "requestContext.identity.sourceIp" && k != "requestContext.identity.userAgent"
			if file == "apigw-websocket-request.json" && (restOnly[k] || identityExtra) {
				continue
			}
			if !have[k] {
				t.Errorf("%s: our event lacks %q", file, k)
			}
		}
		if file != "apigw-websocket-request.json" {
			for _, k := range sorted(have) {
				if !want[k] {
					t.Errorf("%s: our event has %q, which AWS's does not", file, k)
				}
			}
		}
	}
	if d := got["apigw-websocket-request-disconnect.json"]; d.RequestContext.DisconnectStatusCode != 1001 {
		t.Errorf("disconnectStatusCode %d, want the client's 1001", d.RequestContext.DisconnectStatusCode)
	}
}

// TestConnectEventForwardingHeaders: $connect carries the forwarding
// headers API Gateway adds, on IPv4 and IPv6 listeners alike.
func TestConnectEventForwardingHeaders(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			if ln, err := net.Listen("tcp", addr); err != nil {
				t.Skipf("no %s listener here: %v", addr, err)
			} else {
				ln.Close()
			}
			rec := newRecorder()
			gw := start(t, local.Config{Addr: addr, Routes: rec.routes()})
			dial(t, gw, nil)
			ev := next(t, rec.connects)
			host, port, err := net.SplitHostPort(gw.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.Headers["X-Forwarded-Port"]; got != port {
				t.Errorf("X-Forwarded-Port %q, want %q", got, port)
			}
			if got := ev.Headers["X-Forwarded-For"]; got != host || ev.RequestContext.Identity.SourceIP != host {
				t.Errorf("X-Forwarded-For %q, sourceIp %q, want %q", got, ev.RequestContext.Identity.SourceIP, host)
			}
			if got := ev.Headers["X-Forwarded-Proto"]; got != "http" {
				t.Errorf("X-Forwarded-Proto %q", got)
			}
		})
	}
}
