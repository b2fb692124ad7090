package local_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// syncBuffer is a log sink that tests read while the gateway writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// count reports how many log lines contain sub.
func (s *syncBuffer) count(sub string) int { return strings.Count(s.String(), sub) }

// rawPost posts body to the management endpoint of id with the Host and
// headers given, unsigned, and returns the status and error type.
func rawPost(t *testing.T, gw *local.Gateway, id, host string, h http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, gw.ManagementEndpoint()+"/@connections/"+url.PathEscape(id), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range h {
		req.Header[k] = v
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype")
}

// dialHost upgrades with the Host and Origin given and returns the
// handshake's status (101 when accepted).
func dialHost(t *testing.T, gw *local.Gateway, host, origin string) int {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctxT(t), gw.URL(), &websocket.DialOptions{Host: host, HTTPHeader: h})
	if err == nil {
		c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial with Host %q: %v", host, err)
	}
	return resp.StatusCode
}

func TestUpgradeRefusesForeignHost(t *testing.T) {
	var logs syncBuffer
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), AllowedHosts: []string{"dev.example.test", "*.apps.example.test"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	_, port, _ := net.SplitHostPort(gw.Addr())
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		// DNS rebinding: the attacker's name, with or without its origin.
		{"evil.example:" + port, "http://evil.example:" + port, http.StatusForbidden},
		{"evil.example:" + port, "", http.StatusForbidden},
		{"evil.example", "", http.StatusForbidden},
		{"localhost.evil.example:" + port, "", http.StatusForbidden},
		{"127.0.0.1.nip.io:" + port, "", http.StatusForbidden},
		{"dev.example.test.evil:" + port, "", http.StatusForbidden},
		{"apps.example.test", "", http.StatusForbidden}, // the wildcard is for subdomains only
		// The gateway's own names, any port.
		{gw.Addr(), "", http.StatusSwitchingProtocols},
		{"localhost:" + port, "http://localhost:" + port, http.StatusSwitchingProtocols},
		{"LocalHost.:" + port, "", http.StatusSwitchingProtocols},
		{"localhost", "", http.StatusSwitchingProtocols},
		{"127.0.0.1:9999", "", http.StatusSwitchingProtocols},
		{"[::1]:" + port, "", http.StatusSwitchingProtocols},
		{"[::1]", "", http.StatusSwitchingProtocols},
		{"dev.example.test:" + port, "", http.StatusSwitchingProtocols},
		{"a.apps.example.test", "", http.StatusSwitchingProtocols},
		// A local Host does not make a foreign origin acceptable.
		{"localhost:" + port, "http://evil.example", http.StatusForbidden},
	} {
		if got := dialHost(t, gw, tc.host, tc.origin); got != tc.want {
			t.Errorf("Host %q Origin %q: %d, want %d", tc.host, tc.origin, got, tc.want)
		}
	}
	if n := logs.count("Host is not a name of this server"); n != 7 {
		t.Errorf("%d log lines for 7 refused Hosts:\n%s", n, logs.String())
	}
	// No refused upgrade reached $connect: 9 accepted ones did.
	if n := len(rec.connects); n != 9 {
		t.Errorf("$connect ran %d times, want 9", n)
	}
}

func TestManagementRefusesForeignHostAndOrigin(t *testing.T) {
	var logs syncBuffer
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c, id := connect(t, gw, rec)
	_, port, _ := net.SplitHostPort(gw.Addr())
	origin := func(o string) http.Header { return http.Header{"Origin": {o}, "Content-Type": {"text/plain"}} }
	for _, tc := range []struct {
		name   string
		host   string
		header http.Header
		want   int
	}{
		{"rebinding Host", "evil.example:" + port, nil, http.StatusForbidden},
		{"rebinding Host and Origin", "evil.example:" + port, origin("http://evil.example:" + port), http.StatusForbidden},
		{"cross-site text/plain post", "", origin("https://evil.example"), http.StatusForbidden},
		{"cross-site post, null origin", "", origin("null"), http.StatusForbidden},
		{"IPv6 loopback Host, foreign origin", "[::1]:" + port, origin("http://evil.example"), http.StatusForbidden},
		{"no Origin (SDK, curl)", "", nil, http.StatusOK},
		{"localhost page", "localhost:" + port, origin("http://localhost:3000"), http.StatusOK},
		{"same origin", "", origin("http://" + gw.Addr()), http.StatusOK},
	} {
		got, _ := rawPost(t, gw, id, tc.host, tc.header, tc.name)
		if got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// Exactly the three accepted posts arrived, in order.
	for _, want := range []string{"no Origin (SDK, curl)", "localhost page", "same origin"} {
		_, b, err := c.Read(ctxT(t))
		if err != nil || string(b) != want {
			t.Fatalf("read %q %v, want %q", b, err, want)
		}
	}
	if n := logs.count("request refused"); n != 5 {
		t.Errorf("%d refusal log lines for 5 refusals:\n%s", n, logs.String())
	}
}

func TestHostCheckOnIPv6Listener(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	rec := newRecorder()
	gw, err := local.New(local.Config{Routes: rec.routes()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ln) }()
	t.Cleanup(func() {
		if err := gw.Shutdown(ctxT(t)); err != nil {
			t.Error(err)
		}
		<-done
	})
	// Serve sets the address once it runs.
	deadline := time.Now().Add(10 * time.Second)
	for gw.Addr() == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_, port, _ := net.SplitHostPort(gw.Addr())
	if got := dialHost(t, gw, "", ""); got != http.StatusSwitchingProtocols {
		t.Errorf("own address %s: %d", gw.Addr(), got)
	}
	if got := dialHost(t, gw, "evil.example:"+port, ""); got != http.StatusForbidden {
		t.Errorf("foreign Host on [::1]: %d", got)
	}
	id := next(t, rec.connects).RequestContext.ConnectionID
	if got, _ := rawPost(t, gw, id, "", http.Header{"Origin": {"http://evil.example"}}, "x"); got != http.StatusForbidden {
		t.Errorf("foreign origin post on [::1]: %d", got)
	}
}

func TestGuardWrapsPagesConsoleAndMetrics(t *testing.T) {
	var logs syncBuffer
	gw, err := local.New(local.Config{AccessToken: "s3cret", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	app := http.NewServeMux()
	app.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") })
	app.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })
	app.HandleFunc("/_console/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "console") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw.Guard(app, "/metrics", "/_console/")}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()
	jar := &cookieJar{}
	client := &http.Client{Jar: jar}
	t.Cleanup(client.CloseIdleConnections)
	do := func(method, path, host string, h http.Header) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctxT(t), method, base+path, strings.NewReader("x"))
		if host != "" {
			req.Host = host
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, tc := range []struct {
		method, path, host string
		h                  http.Header
		want               int
	}{
		{"GET", "/", "evil.example:" + port, nil, 403},
		{"GET", "/metrics", "evil.example", nil, 403},
		{"GET", "/_console/api/state", "evil.example:" + port, nil, 403},
		{"DELETE", "/_console/api/connections/x", "", http.Header{"Origin": {"http://evil.example"}}, 403},
		{"POST", "/", "", http.Header{"Origin": {"http://evil.example"}}, 403},
		{"GET", "/", "localhost:" + port, nil, 200},  // the page needs no token
		{"GET", "/metrics", "", nil, 401},            // private without the token
		{"GET", "/_console/api/state", "", nil, 401}, // private without the token
		{"GET", "/metrics", "", http.Header{"Authorization": {"Bearer s3cret"}}, 200},
		{"GET", "/metrics", "", http.Header{"Authorization": {"Bearer wrong"}}, 401},
		{"GET", "/_console/?token=s3cret", "", nil, 200}, // sets the cookie
		{"GET", "/_console/api/state", "", nil, 200},     // the cookie carries it now
		{"GET", "/_console", "", nil, 200},               // the prefix without its slash
	} {
		if got, body := do(tc.method, tc.path, tc.host, tc.h); got != tc.want {
			t.Errorf("%s %s Host %q %v: %d %q, want %d", tc.method, tc.path, tc.host, tc.h, got, body, tc.want)
		}
	}
	if logs.count("s3cret") != 0 {
		t.Errorf("the token is in the log:\n%s", logs.String())
	}
}

// cookieJar keeps the cookies of one host: enough for the console flow.
type cookieJar struct {
	mu sync.Mutex
	c  []*http.Cookie
}

func (j *cookieJar) SetCookies(_ *url.URL, c []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.c = append(j.c, c...)
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.c
}

func TestAccessTokenOnManagementAPI(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), AccessToken: "s3cret"})
	c, id := connect(t, gw, rec)
	if got, typ := rawPost(t, gw, id, "", nil, "no token"); got != http.StatusForbidden || typ != "ForbiddenException" {
		t.Errorf("without the token: %d %s", got, typ)
	}
	if got, _ := rawPost(t, gw, id, "", http.Header{"Authorization": {"Bearer s3cret"}}, "bearer"); got != http.StatusOK {
		t.Errorf("with the bearer token: %d", got)
	}
	if got, _ := rawPost(t, gw, id, "", http.Header{"X-Streamer-Token": {"s3cret"}}, "header"); got != http.StatusOK {
		t.Errorf("with X-Streamer-Token: %d", got)
	}
	// A request signed with the local secret stands for the token: the
	// in-process manager and the template's functions sign.
	post := func(secret, data string) error {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			BaseEndpoint: aws.String(gw.ManagementEndpoint()), Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("ANYKEY", secret, ""),
			Retryer:     aws.NopRetryer{}, HTTPClient: &http.Client{Transport: tr},
		})
		_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(data)})
		return err
	}
	if err := post(local.LocalSecretAccessKey, "signed"); err != nil {
		t.Errorf("signed with the local secret: %v", err)
	}
	if err := post("another", "badly signed"); err == nil {
		t.Error("signed with another secret: accepted")
	}
	for _, want := range []string{"bearer", "header", "signed"} {
		if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != want {
			t.Fatalf("read %q %v, want %q", b, err, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.0.0.2:0": true, "localhost:0": true, "[::1]:9": true,
		"0.0.0.0:8080": false, "[::]:8080": false, ":8080": false, "192.0.2.10:80": false,
		"[2001:db8::1]:80": false, "example.com:80": false,
	} {
		if got := local.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestHostCheckUnspecifiedDomain: a gateway whose port is served by
// another server (Guard, DomainName 0.0.0.0:PORT) answers to the
// machine's own addresses, as its listener does.
func TestHostCheckUnspecifiedDomain(t *testing.T) {
	var own string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			own = ipn.IP.String()
			break
		}
	}
	if own == "" {
		t.Skip("no non-loopback IPv4 address on this machine")
	}
	gw, err := local.New(local.Config{DomainName: "0.0.0.0:8080"})
	if err != nil {
		t.Fatal(err)
	}
	h := gw.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for host, want := range map[string]int{own + ":8080": 200, "localhost:8080": 200, "evil.example:8080": 403} {
		rw := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = host
		h.ServeHTTP(rw, req)
		if rw.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rw.Code, want)
		}
	}
}
