package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/cmd/streamer/internal/devui"
)

// TestDevServesPageAndConsole runs `streamer dev` as a process: it names
// the demo page and the console, serves both on the gateway's port next to
// the WebSocket and @connections, the console sees a connection with its
// app identity and the whoami route, its DELETE button closes it through
// the management API, and SIGTERM still exits 0.
func TestDevServesPageAndConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := startDevProcess(t, buildBinary(t))
	base := strings.TrimSuffix(p.endpoint, "/dev")
	want := map[string]string{"Demo page:": base + "/", "Dev console:": base + "/_console"}
	for len(want) > 0 {
		select {
		case l := <-p.lines:
			p.stdout = append(p.stdout, l)
			for prefix, u := range want {
				if v, ok := strings.CutPrefix(l, prefix); ok {
					if strings.TrimSpace(v) != u {
						t.Errorf("%s %q, want %q", prefix, strings.TrimSpace(v), u)
					}
					delete(want, prefix)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("not printed: %v (stdout %q)", want, p.stdout)
		}
	}

	for path, marker := range map[string]string{"/": "Streamer demo", "/_console": "Streamer dev console", "/_ui/client/index.js": "StreamerClient"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), marker) {
			t.Errorf("GET %s: %d, no %q", path, resp.StatusCode, marker)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dialDev(ctx, t, p.wsURL, nil)
	who := c.whoami(ctx)
	// The route is recorded when the handler returns, which can be just
	// after its answer reached the client.
	st := consoleState(t, base)
	for deadline := time.Now().Add(5 * time.Second); (len(st.Routes) < 2 || st.Routes[0].RouteKey != "$default") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st = consoleState(t, base)
	}
	if len(st.Connections) != 1 || st.Connections[0].ConnectionID != who.ConnectionID || st.Connections[0].UserID != "anonymous" || st.Connections[0].TenantID != "default" {
		t.Fatalf("console connections %+v, want %s as anonymous/default", st.Connections, who.ConnectionID)
	}
	if len(st.Routes) < 2 || st.Routes[0].RouteKey != "$default" || st.Routes[0].Status != 200 || st.Management[0].Method != "POST" || st.Management[0].Status != 200 {
		t.Errorf("console routes %+v, calls %+v", st.Routes, st.Management)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/_console/api/connections/"+url.PathEscape(who.ConnectionID), nil)
	req.Header.Set("X-Streamer-Console", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res devui.ManageResult
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if res.Status != http.StatusNoContent {
		t.Fatalf("console DELETE answered %+v", res)
	}
	if _, _, err := c.c.Read(ctx); err == nil {
		t.Fatal("the socket is still open after the console's DELETE")
	}
	p.stop(t)
}

func consoleState(t *testing.T, base string) devui.State {
	t.Helper()
	resp, err := http.Get(base + "/_console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st devui.State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
