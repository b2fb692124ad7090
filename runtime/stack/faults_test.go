package stack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/stack"
)

// TestAuthorizerRoutesAndFaults runs testdata/tplapp/template.yaml:
// a Python REQUEST authorizer on $connect, a Go function that `streamer
// dev` builds from its package, a Python route, and functions that crash,
// hang past their Timeout and break the Runtime API. The client gets API
// Gateway's answers, keeps its socket, and each next invocation runs in a
// fresh process.
func TestAuthorizerRoutesAndFaults(t *testing.T) {
	short(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	p := start(t, stack.Config{Template: "testdata/tplapp/template.yaml", StackName: "faults"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for token, want := range map[string]int{"": http.StatusUnauthorized, "deny": http.StatusForbidden, "unauth": http.StatusUnauthorized, "boom": http.StatusInternalServerError} {
		u := p.WebSocketURL()
		if token != "" {
			u += "?token=" + token
		}
		c, resp, err := websocket.Dial(ctx, u, nil)
		if err == nil {
			c.CloseNow()
			t.Errorf("token %q: connected", token)
			continue
		}
		if resp == nil || resp.StatusCode != want {
			t.Errorf("token %q: %v (%v), want %d", token, err, resp, want)
		}
	}
	// A $connect function that fails refuses the upgrade with 500.
	_, resp, err := websocket.Dial(ctx, p.WebSocketURL()+"?token=good", &websocket.DialOptions{HTTPHeader: http.Header{"X-Fail-Connect": {"1"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("failing $connect: %v (%v), want 500", err, resp)
	}

	c := dial(ctx, t, p.WebSocketURL()+"?token=good", nil)
	raw := func(msg string) map[string]any {
		t.Helper()
		c.send(ctx, msg)
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	who := raw(`{"action":"whoami"}`)
	connID, _ := who["connection"].(string)
	if who["principalId"] != "alice" || who["tier"] != "gold" || connID == "" {
		t.Fatalf("the message route saw requestContext.authorizer %v", who)
	}
	pid := func() float64 {
		t.Helper()
		m := map[string]any{}
		c.send(ctx, `{"action":"pid"}`)
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatalf("pid answer %s (%v)", b, m)
		}
		return n
	}
	internal := func(route string) {
		t.Helper()
		m := raw(`{"action":"` + route + `"}`)
		if m["message"] != "Internal server error" || m["connectionId"] != connID || m["requestId"] == "" || m["requestId"] == nil {
			t.Fatalf("%s: %v, want API Gateway's internal server error", route, m)
		}
	}
	// A process that crashed or timed out never runs the function
	// again; the pool may hold two (proactive init), so each is asked
	// twice.
	gone := func(what string) {
		t.Helper()
		m := regexp.MustCompile(what + ` on purpose in process (\d+)`).FindStringSubmatch(p.output.String())
		if m == nil {
			t.Fatalf("no %q line in the function's output", what)
		}
		for range 3 {
			if n := pid(); strconv.FormatFloat(n, 'f', -1, 64) == m[1] {
				t.Fatalf("after %s the function ran in process %s again", what, m[1])
			}
		}
	}
	pid()
	internal("crash")
	gone("crashing")
	internal("hang") // GoFunction's Timeout is 2 s
	gone("hanging")
	internal("garbage")
	internal("garbage") // a fresh process, broken the same way
	py := raw(`{"action":"py","say":"hello"}`)
	if py["python"] != true || py["echo"] != "hello" || py["function"] != "faults-PyFunction" || py["route"] != "py" || py["table"] != "faults-table" {
		t.Errorf("python route answered %v", py)
	}
	p.stop(t)
	out := p.notices.String()
	if !strings.Contains(out, "not emulated: Queue (AWS::SQS::Queue) is not emulated") {
		t.Errorf("start-up lines do not name the queue:\n%s", out)
	}
	if logs := p.output.String(); !strings.Contains(logs, "faults-GoFunction | crashing on purpose") {
		t.Errorf("no prefixed output from the crashing function:\n%s", logs)
	}
}
