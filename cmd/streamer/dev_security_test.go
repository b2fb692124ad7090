package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
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

// startExposedDev runs the demo in-process on loopback, as if its address
// were reachable from other machines (the address check is injected: the
// tests never bind a real non-loopback interface).
func startExposedDev(t *testing.T, args ...string) (*devStack, string) {
	t.Helper()
	o, err := parseDevFlags(append([]string{"--addr", "127.0.0.1:0"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.sec.isLoopback = func(string) bool { return false }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := startDev(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := s.shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	var out strings.Builder
	s.sec.printSecurity(&out, "http://"+s.addr, false)
	return s, out.String()
}

func call(ctx context.Context, t *testing.T, method, u string, h http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype") + string(b)
}

// TestDevExposedNeedsTheToken: on an exposed address the start-up lines
// warn and name what is exposed, and print a token; the console, /metrics
// and the management API refuse requests without it, the demo page and
// the WebSocket API stay open, and the app's own replies (signed by its
// manager) and the console's buttons (signed) keep working.
func TestDevExposedNeedsTheToken(t *testing.T) {
	s, out := startExposedDev(t)
	for _, want := range []string{"WARNING", "other machines", "dev console", "/metrics", "management API", "Access token:        " + s.sec.token} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up lines lack %q:\n%s", want, out)
		}
	}
	if len(s.sec.token) < 32 {
		t.Fatalf("token %q", s.sec.token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialDev(ctx, t, s.wsURL, nil)
	id := c.whoami(ctx).ConnectionID // the manager's signed reply passed
	base := "http://" + s.addr
	mgmt := s.endpoint + "/@connections/" + url.PathEscape(id)
	bearer := http.Header{"Authorization": {"Bearer " + s.sec.token}}
	for _, tc := range []struct {
		method, url string
		h           http.Header
		want        int
	}{
		{"GET", base + "/", nil, 200},
		{"GET", base + "/metrics", nil, 401},
		{"GET", base + "/_console", nil, 401},
		{"GET", base + "/_console/api/state", nil, 401},
		{"POST", mgmt, nil, 403},
		{"GET", mgmt, nil, 403},
		{"DELETE", mgmt, nil, 403},
		{"GET", base + "/metrics", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"GET", base + "/metrics", bearer, 200},
		{"GET", base + "/_console/api/state?token=" + s.sec.token, nil, 200},
		{"GET", mgmt, bearer, 200},
		{"POST", mgmt, http.Header{"X-Streamer-Token": {s.sec.token}}, 200},
	} {
		if got, body := call(ctx, t, tc.method, tc.url, tc.h, "with token"); got != tc.want {
			t.Errorf("%s %s %v: %d %s, want %d", tc.method, tc.url, tc.h, got, body, tc.want)
		}
	}
	if _, b, err := c.c.Read(ctx); err != nil || string(b) != "with token" {
		t.Fatalf("read %q %v, want only the post with the token", b, err)
	}
	// The console's DELETE, with the token's cookie: the console signs its
	// management call, which stands in for the token.
	h := http.Header{"X-Streamer-Console": {"1"}, "Cookie": {"streamer_token=" + s.sec.token}}
	if got, body := call(ctx, t, "DELETE", base+"/_console/api/connections/"+url.PathEscape(id), h, ""); got != 200 || !strings.Contains(body, `"status":204`) {
		t.Fatalf("console DELETE: %d %s", got, body)
	}
	if _, _, err := c.c.Read(ctx); err == nil {
		t.Fatal("the socket is still open after the console's DELETE")
	}
}

func TestDevInsecureExposeAndLoopback(t *testing.T) {
	s, out := startExposedDev(t, "--insecure-expose")
	if s.sec.token != "" || !strings.Contains(out, "--insecure-expose") || !strings.Contains(out, "WARNING") {
		t.Errorf("token %q, start-up lines:\n%s", s.sec.token, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got, _ := call(ctx, t, "GET", "http://"+s.addr+"/metrics", nil, ""); got != 200 {
		t.Errorf("/metrics with --insecure-expose: %d", got)
	}
	// On loopback: no warning, no token.
	var o securityOptions
	if err := o.resolve("127.0.0.1:8080"); err != nil || o.exposed || o.token != "" {
		t.Errorf("loopback: exposed %v token %q %v", o.exposed, o.token, err)
	}
	var b strings.Builder
	o.printSecurity(&b, "http://127.0.0.1:8080", false)
	if strings.Contains(b.String(), "WARNING") {
		t.Errorf("warning on loopback:\n%s", b.String())
	}
	for _, addr := range []string{"0.0.0.0:8080", "[::]:0", "192.0.2.7:80"} {
		o := securityOptions{}
		if err := o.resolve(addr); err != nil || !o.exposed || o.token == "" {
			t.Errorf("%s: exposed %v token %q %v", addr, o.exposed, o.token, err)
		}
	}
}

// TestDevVerifySignaturesInDemoMode: --verify-signatures in the demo mode
// refuses an unsigned post with AWS's error type and says so at start;
// the demo's own replies (signed by its manager) keep working.
func TestDevVerifySignaturesInDemoMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := startDevProcess(t, buildBinary(t), "--verify-signatures")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dialDev(ctx, t, p.wsURL, nil)
	id := c.whoami(ctx).ConnectionID
	if got, body := call(ctx, t, "POST", p.endpoint+"/@connections/"+url.PathEscape(id), nil, "x"); got != 403 || !strings.HasPrefix(body, "MissingAuthenticationTokenException") {
		t.Errorf("unsigned post: %d %s", got, body)
	}
	p.stop(t)
	if out := strings.Join(p.stdout, "\n"); !strings.Contains(out, "Signatures:          checked as AWS does (--verify-signatures)") {
		t.Errorf("start-up lines:\n%s", out)
	}
	// Without the flag the demo accepts curl's unsigned posts, and says so.
	var o securityOptions
	var b strings.Builder
	o.printSecurity(&b, "http://127.0.0.1:1", false)
	if !strings.Contains(b.String(), "not checked") {
		t.Errorf("demo default:\n%s", b.String())
	}
}

// TestTemplateVerifiesSignaturesByDefault runs the Node.js chat sample
// (AWS SDK v3 signing with the credentials the runtime gives functions):
// signatures are checked without a flag, the sample's signed posts are
// accepted, and an unsigned post is refused as AWS refuses it.
func TestTemplateVerifiesSignaturesByDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	endpoint := dynamotest.Endpoint(t)
	if _, err := os.Stat("testdata/chat/node_modules/@aws-sdk/client-apigatewaymanagementapi"); err != nil {
		t.Skip("testdata/chat/node_modules is missing: run `make test-deps`")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	table := dynamotest.Prefix("sigchat") + "connections"
	p := startDevProcess(t, buildBinary(t), "--template", "testdata/chat/template.yaml", "--dynamodb-endpoint", endpoint, "--no-watch",
		"--parameter-overrides", "TableName="+table)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Cleanup(func() {
		dynamotest.Client(t).DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	a := dialDev(ctx, t, p.wsURL, nil)
	b := dialDev(ctx, t, p.wsURL, nil)
	a.send(ctx, `{"action":"sendmessage","data":"signed by node"}`)
	for _, cl := range []*client{a, b} {
		if _, msg, err := cl.c.Read(ctx); err != nil || string(msg) != "signed by node" {
			t.Fatalf("read %q %v", msg, err)
		}
	}
	// An unsigned post, and a foreign Host, at the template's gateway.
	ids := connectionIDs(ctx, t, table)
	if len(ids) == 0 {
		t.Fatal("no connection stored")
	}
	if got, body := call(ctx, t, "POST", p.endpoint+"/@connections/"+url.PathEscape(ids[0]), nil, "x"); got != 403 || !strings.HasPrefix(body, "MissingAuthenticationTokenException") {
		t.Errorf("unsigned post: %d %s", got, body)
	}
	base := strings.TrimSuffix(p.endpoint, "/"+path.Base(p.endpoint))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	if got := probe(ctx, t, base, "evil.example:"+port, hostProbe{"get", "GET", "/" + path.Base(p.endpoint) + "/@connections/" + url.PathEscape(ids[0]), nil}); got != 403 {
		t.Errorf("foreign Host at the template's gateway: %d", got)
	}
	if ws, resp, err := websocket.Dial(ctx, p.wsURL, &websocket.DialOptions{Host: "evil.example:" + port}); err == nil {
		ws.CloseNow()
		t.Error("template upgrade with a foreign Host accepted")
	} else if resp == nil || resp.StatusCode != 403 {
		t.Errorf("template upgrade with a foreign Host: %v %v", resp, err)
	}
	p.stop(t)
	if out := strings.Join(p.stdout, "\n"); !strings.Contains(out, "Signatures:          checked as AWS does (on by default with --template)") {
		t.Errorf("start-up lines:\n%s", out)
	}
}

// connectionIDs are the chat sample's stored connections.
func connectionIDs(ctx context.Context, t *testing.T, table string) []string {
	t.Helper()
	out, err := dynamotest.Client(t).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range out.Items {
		if v, ok := it["connectionId"].(*types.AttributeValueMemberS); ok {
			ids = append(ids, v.Value)
		}
	}
	return ids
}
