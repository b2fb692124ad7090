package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTemplateStartsDynaliteAndServesTheTools runs `streamer dev
// --template` on the corpus's chat sample with no --dynamodb-endpoint: it
// starts dynalite itself (found in the user's cache folder, where it
// would install it, here a link to the repository's .tools), the sample's
// table lives there, two people chat, and the API's port serves the dev
// console and /metrics as in the demo mode.
func TestTemplateStartsDynaliteAndServesTheTools(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	tools, err := filepath.Abs("../../.tools")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tools, "node_modules", "dynalite")); err != nil {
		t.Skip("dynalite is not installed in .tools: run `make tools`")
	}
	corpus := "../../runtime/stack/testdata/corpus"
	if _, err := os.Stat(corpus + "/node_modules/@aws-sdk/client-dynamodb"); err != nil {
		t.Skip("the corpus's node_modules is missing: run `make test-deps`")
	}
	cache := t.TempDir()
	if err := os.MkdirAll(filepath.Join(cache, "streamer"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tools, filepath.Join(cache, "streamer", "dynalite")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", cache)
	p := startDevProcess(t, buildBinary(t), "--template", corpus+"/simple-websockets-chat-app/template.yaml", "--no-watch")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := dialDev(ctx, t, p.wsURL, nil)
	b := dialDev(ctx, t, p.wsURL, nil)
	a.send(ctx, `{"action":"sendmessage","data":"hi b"}`)
	for who, c := range map[string]*client{"a": a, "b": b} {
		if _, msg, err := c.c.Read(ctx); err != nil || string(msg) != "hi b" {
			t.Fatalf("%s read %q, %v", who, msg, err)
		}
	}

	base := strings.TrimSuffix(p.endpoint, "/Prod")
	get := func(path string) (int, string) {
		t.Helper()
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location") + string(body)
	}
	if code, body := get("/_console"); code != http.StatusOK || !strings.Contains(body, "<html") {
		t.Errorf("/_console: %d %.200s", code, body)
	}
	if code, body := get("/_console/api/state"); code != http.StatusOK || !strings.Contains(body, `"open":2`) {
		t.Errorf("console state: %d %.300s", code, body)
	}
	// The route is counted once its function returned, which may be
	// after the clients got the messages it posted.
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, body = get("/metrics"); strings.Contains(body, `streamer_gateway_route_invocations_total{route="sendmessage"} 1`) {
			break
		}
	}
	if code != http.StatusOK || !strings.Contains(body, "streamer_gateway_connections_opened_total 2") || !strings.Contains(body, `streamer_gateway_route_invocations_total{route="sendmessage"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, where := get("/"); code != http.StatusSeeOther || !strings.HasPrefix(where, "/_console") {
		t.Errorf("/: %d %q, want a redirect to the console", code, where)
	}
	p.stop(t)
	out := strings.Join(p.stdout, "\n")
	for _, want := range []string{"DynamoDB: dynalite 4.0.0 at http://127.0.0.1:", "Dev console:         " + base + "/_console", "Metrics:             " + base + "/metrics", "Output WebSocketURI: ws://"} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up lines lack %q:\n%s", want, out)
		}
	}
}
