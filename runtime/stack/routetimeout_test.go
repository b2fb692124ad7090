package stack_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/stack"
)

// TestRouteIntegrationTimeout runs testdata/timeoutapp/template.yaml, whose
// slow route has SAM's IntegrationTimeout: 200 and a function (Timeout 15
// s) that runs until the test lets it finish. The client gets API
// Gateway's timeout frame, which only the route's own timeout gives: with
// the default 29 s the function's Timeout would end first, answered as
// "Internal server error". The client keeps its socket; the function is
// not stopped but runs to its end, and its late answer never reaches the
// client.
func TestRouteIntegrationTimeout(t *testing.T) {
	short(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	p := start(t, stack.Config{Template: "testdata/timeoutapp/template.yaml", StackName: "timeouts"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c := dial(ctx, t, p.WebSocketURL(), nil)
	if got := func() string { c.send(ctx, `{"action":"echo"}`); return c.read(ctx) }(); got != "echo" {
		t.Fatalf("echo answered %q", got)
	}
	release := filepath.Join(t.TempDir(), "release")
	msg, _ := json.Marshal(map[string]string{"action": "slow", "release": release, "tag": "t1"})
	c.send(ctx, string(msg))
	var frame map[string]any
	if b := c.read(ctx); json.Unmarshal([]byte(b), &frame) != nil || frame["message"] != "Endpoint request timed out" ||
		frame["connectionId"] == "" || frame["connectionId"] == nil || frame["requestId"] == "" || frame["requestId"] == nil {
		t.Fatalf("slow route answered %s, want API Gateway's timeout frame", b)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The function goes on past the gateway's timeout to its own end.
	for !strings.Contains(p.output.String(), "slow finished t1") {
		select {
		case <-ctx.Done():
			t.Fatal("the slow function did not finish after the gateway's timeout")
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The socket is open; what comes next is the next answer, never the
	// late one.
	for range 2 {
		c.send(ctx, `{"action":"echo"}`)
		if got := c.read(ctx); got != "echo" {
			t.Fatalf("after the timeout the client got %q, want echo", got)
		}
	}
}
