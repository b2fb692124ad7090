package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// hostProbe is one request of an attacker's page: a path, a method and
// the headers a browser would send.
type hostProbe struct {
	name, method, path string
	header             http.Header
}

// probe sends one request to base with Host host and returns its status.
func probe(ctx context.Context, t *testing.T, base, host string, p hostProbe) int {
	t.Helper()
	var body io.Reader
	if p.method == http.MethodPost {
		body = strings.NewReader("pwned")
	}
	req, err := http.NewRequestWithContext(ctx, p.method, base+p.path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range p.header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestDevRefusesForeignHostOnEveryEndpoint runs `streamer dev` and plays
// a DNS-rebinding page (Host and Origin evil.example:PORT) and a
// cross-site page (Origin evil.example, the real Host) against every
// endpoint: the upgrade, the management API, the demo page, the console
// and its API, and /metrics. Each is refused with 403; the connection the
// attacker aimed at is still open and still gets an honest post.
func TestDevRefusesForeignHostOnEveryEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := startDevProcess(t, buildBinary(t), "--allowed-hosts", "dev.example.test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialDev(ctx, t, p.wsURL, nil)
	id := c.whoami(ctx).ConnectionID
	base := strings.TrimSuffix(p.endpoint, "/dev")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	evil := "evil.example:" + port
	evilOrigin := http.Header{"Origin": {"http://" + evil}, "X-Streamer-Console": {"1"}, "Content-Type": {"text/plain"}}
	conn := url.PathEscape(id)
	probes := []hostProbe{
		{"demo page", "GET", "/", nil},
		{"console page", "GET", "/_console", nil},
		{"console state", "GET", "/_console/api/state", nil},
		{"console DELETE", "DELETE", "/_console/api/connections/" + conn, evilOrigin},
		{"metrics", "GET", "/metrics", nil},
		{"management GET", "GET", "/dev/@connections/" + conn, nil},
		{"management POST", "POST", "/dev/@connections/" + conn, evilOrigin},
		{"management DELETE", "DELETE", "/dev/@connections/" + conn, evilOrigin},
	}
	for _, pr := range probes {
		if got := probe(ctx, t, base, evil, pr); got != http.StatusForbidden {
			t.Errorf("%s with Host %s: %d, want 403", pr.name, evil, got)
		}
	}
	// The real Host with a foreign Origin: whatever changes state is
	// refused (a text/plain POST needs no preflight).
	for _, pr := range []hostProbe{probes[3], probes[6], probes[7]} {
		pr.header = http.Header{"Origin": {"https://evil.example"}, "X-Streamer-Console": {"1"}, "Content-Type": {"text/plain"}}
		if got := probe(ctx, t, base, "127.0.0.1:"+port, pr); got != http.StatusForbidden {
			t.Errorf("%s from origin evil.example: %d, want 403", pr.name, got)
		}
	}
	// The upgrade, as the rebinding page would open it.
	if ws, resp, err := websocket.Dial(ctx, p.wsURL, &websocket.DialOptions{Host: evil, HTTPHeader: http.Header{"Origin": {"http://" + evil}}}); err == nil {
		ws.CloseNow()
		t.Error("upgrade with Host evil.example accepted")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("upgrade with Host evil.example: %v %v, want 403", resp, err)
	}
	// The local names and --allowed-hosts still work, on every endpoint.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "dev.example.test:" + port, "[::1]:" + port} {
		for _, pr := range []hostProbe{probes[0], probes[2], probes[4], probes[5]} {
			if got := probe(ctx, t, base, host, pr); got != http.StatusOK {
				t.Errorf("%s with Host %s: %d, want 200", pr.name, host, got)
			}
		}
	}
	ok := probe(ctx, t, base, "localhost:"+port, hostProbe{"honest post", "POST", "/dev/@connections/" + conn, nil})
	if ok != http.StatusOK {
		t.Fatalf("honest post: %d", ok)
	}
	if _, b, err := c.c.Read(ctx); err != nil || string(b) != "pwned" {
		t.Fatalf("after the attack the connection read %q, %v; want only the honest post", b, err)
	}
	p.stop(t)
	if n := strings.Count(p.stderr.String(), "request refused"); n != len(probes)+4 {
		t.Errorf("%d refusal log lines for %d refusals", n, len(probes)+4)
	}
}
