package local_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/streamer-go/streamer/runtime/local"
)

// TestConnectEventKeepsTheClientsSpelling sends, on a raw socket, the
// client headers of AWS's documented $connect event (testdata/) spelled
// as there ("cache-control", "headerName", "Sec-WebSocket-Key") and
// checks that headers and multiValueHeaders name them the same way, as
// API Gateway does, with repeated headers and query parameters in order.
func TestConnectEventKeepsTheClientsSpelling(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "apigw-websocket-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sample struct {
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	}
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})

	sent := map[string]string{}
	for k, v := range sample.Headers {
		switch k {
		case "Host", "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto":
			continue // API Gateway sets these itself
		}
		sent[k] = v
	}
	sent["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
	sent["Sec-WebSocket-Version"] = "13"
	sent["upgrade"] = "websocket"
	sent["connection"] = "Upgrade"
	var req strings.Builder
	req.WriteString("GET /" + local.DefaultStage + "?name=me&name=you HTTP/1.1\r\nhost: " + gw.Addr() + "\r\n")
	for k, v := range sent {
		req.WriteString(k + ": " + v + "\r\n")
	}
	req.WriteString("x-multi: 1\r\nx-multi: 2\r\n\r\n")

	conn, err := net.Dial("tcp", gw.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(req.String())); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	ev := next(t, rec.connects)

	for k, v := range sent {
		if ev.Headers[k] != v || !reflect.DeepEqual(ev.MultiValueHeaders[k], []string{v}) {
			t.Errorf("header %q: headers %q, multiValueHeaders %q, want %q", k, ev.Headers[k], ev.MultiValueHeaders[k], v)
		}
	}
	for _, k := range []string{"Sec-WebSocket-Key", "Sec-WebSocket-Version"} {
		if _, ok := ev.MultiValueHeaders[k]; !ok {
			t.Errorf("multiValueHeaders lacks %q as AWS's sample spells it", k)
		}
	}
	if ev.Headers["host"] != gw.Addr() {
		t.Errorf("host %q, want the client's \"host\" spelling with %q", ev.Headers["host"], gw.Addr())
	}
	if !reflect.DeepEqual(ev.MultiValueHeaders["x-multi"], []string{"1", "2"}) || ev.Headers["x-multi"] != "2" {
		t.Errorf("x-multi: %q / %q, want [1 2] / 2", ev.MultiValueHeaders["x-multi"], ev.Headers["x-multi"])
	}
	for k := range ev.Headers {
		if _, ok := sent[k]; !ok && k != "host" && k != "x-multi" && !strings.HasPrefix(k, "X-Forwarded-") {
			t.Errorf("header %q is not a name the client sent", k)
		}
	}
	if !reflect.DeepEqual(ev.MultiValueQueryStringParameters["name"], []string{"me", "you"}) || ev.QueryStringParameters["name"] != "you" {
		t.Errorf("query: %q / %q, want [me you] / you", ev.MultiValueQueryStringParameters, ev.QueryStringParameters)
	}
}
