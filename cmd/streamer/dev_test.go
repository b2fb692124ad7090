package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestParseDevFlags(t *testing.T) {
	o, err := parseDevFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8080" || o.stage != "dev" || o.routeSelection != "$request.body.action" ||
		o.idleTimeout != 10*time.Minute || o.maxLifetime != 2*time.Hour || o.allowedOrigins != nil || o.logLevel != slog.LevelInfo {
		t.Errorf("defaults %+v", o)
	}
	o, err = parseDevFlags([]string{"--addr", ":0", "--stage", "prod", "--route-selection", "$request.body.meta.kind",
		"--idle-timeout", "5s", "--max-lifetime", "1m", "--allowed-origins", "app.example.com, localhost:*", "--log-level", "debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != ":0" || o.stage != "prod" || o.routeSelection != "$request.body.meta.kind" || o.idleTimeout != 5*time.Second ||
		o.maxLifetime != time.Minute || len(o.allowedOrigins) != 2 || o.allowedOrigins[1] != "localhost:*" || o.logLevel != slog.LevelDebug {
		t.Errorf("parsed %+v", o)
	}
	for _, args := range [][]string{{"--log-level", "loud"}, {"--idle-timeout", "0s"}, {"--bogus"}, {"extra"}} {
		var u usageError
		if _, err := parseDevFlags(args, io.Discard); !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if code := run(context.Background(), []string{"dev", "--route-selection", "$request.header.x", "--addr", "127.0.0.1:0"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad route selection: exit %d, want 2", code)
	}
}

func TestParseDevJWTFlags(t *testing.T) {
	o, err := parseDevFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.jwt.enabled() || o.jwt.userClaim != "sub" || o.jwt.tenantClaim != "tenant_id" || o.jwt.permissionsClaim != "permissions" {
		t.Errorf("jwt defaults %+v", o.jwt)
	}
	o, err = parseDevFlags([]string{"--jwt-algorithms", "RS256, ES256,", "--jwt-issuer", "https://issuer", "--jwt-audience", "aud",
		"--jwt-public-key", "k.pem", "--jwt-jwks", "k.json", "--jwt-hmac-secret-file", "s", "--jwt-user-claim", "uid",
		"--jwt-tenant-claim", "org", "--jwt-permissions-claim", "scope", "--jwt-leeway", "30s",
		"--jwt-jwks-url", "https://idp.example/jwks.json", "--jwt-audience-claim", "client_id", "--jwt-token-use", "access"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := jwtOptions{algorithms: []string{"RS256", "ES256"}, issuer: "https://issuer", audience: "aud", publicKeyFile: "k.pem",
		jwksFile: "k.json", hmacSecretFile: "s", userClaim: "uid", tenantClaim: "org", permissionsClaim: "scope", leeway: 30 * time.Second,
		jwksURL: "https://idp.example/jwks.json", audienceClaim: "client_id", tokenUse: "access"}
	if !reflect.DeepEqual(o.jwt, want) || !o.jwt.enabled() {
		t.Errorf("jwt parsed %+v, want %+v", o.jwt, want)
	}
	for _, tc := range []struct {
		args []string
		want string // a fragment of the message
	}{
		{[]string{"--jwt-audience", "a", "--jwt-issuer", "i"}, "--jwt-audience, --jwt-issuer given without --jwt-algorithms"},
		{[]string{"--jwt-public-key", "k.pem"}, "without --jwt-algorithms"},
		{[]string{"--jwt-algorithms", "RS256"}, "needs a key"},
		{[]string{"--jwt-algorithms", " , "}, ""}, // no algorithm: auth stays off, and no other flag was given
		{[]string{"--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", "s", "--jwt-leeway", "-1s"}, "--jwt-leeway"},
		{[]string{"--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", "s", "--jwt-tenant-claim", ""}, "must not be empty"},
	} {
		_, err := parseDevFlags(tc.args, io.Discard)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.args, err)
			}
			continue
		}
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error saying %q", tc.args, err, tc.want)
		}
	}
}

// TestDevJWTKeyProblemsAreUsageErrors: unreadable or unsuitable keys stop
// `streamer dev` before it listens, with exit code 2 and the flag named.
func TestDevJWTKeyProblemsAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(dir, "long")
	if err := os.WriteFile(long, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jwt-algorithms", "RS256", "--jwt-public-key", filepath.Join(dir, "missing.pem")}, "--jwt-public-key"},
		{[]string{"--jwt-algorithms", "RS256", "--jwt-public-key", notPEM}, "--jwt-public-key"},
		{[]string{"--jwt-algorithms", "RS256", "--jwt-jwks", filepath.Join(dir, "missing.json")}, "--jwt-jwks"},
		{[]string{"--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", filepath.Join(dir, "missing")}, "--jwt-hmac-secret-file"},
		{[]string{"--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", short}, "below the minimum"},
		{[]string{"--jwt-algorithms", "none", "--jwt-hmac-secret-file", long}, `"none" is never accepted`},
		// An RSA algorithm with only an HMAC secret has no key to use.
		{[]string{"--jwt-algorithms", "RS256", "--jwt-hmac-secret-file", long}, "no key usable with RS256"},
	} {
		var stderr strings.Builder
		args := append([]string{"dev", "--addr", "127.0.0.1:0"}, tc.args...)
		if code := run(context.Background(), args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestDevHMACSecretFile: the secret file's trailing newline is not part of
// the secret, so a token signed with the bare secret verifies.
func TestDevHMACSecretFile(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef-dev"
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseDevFlags([]string{"--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", file, "--jwt-tenant-claim", "org"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := o.jwt.verifier(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "carol", "org": "o1", "exp": time.Now().Add(time.Minute).Unix()}).
		SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), tok)
	if err != nil || id.UserID != "carol" || id.TenantID != "o1" {
		t.Errorf("Verify: %+v, %v", id, err)
	}
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// buildBinary compiles the streamer command once for the tests that run it
// as a process.
func buildBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "streamer-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "streamer")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestDevEndToEnd runs `streamer dev` as a process: a client connects and
// asks whoami, the real SDK client posts to it, GETs it and DELETEs it,
// and SIGTERM closes the remaining sockets with 1001 and exits 0.
func TestDevEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	t.Run("memory", func(t *testing.T) { devEndToEnd(t, bin) })
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := dynamotest.Endpoint(t)
		// A prefix of its own, so the tables (which the process creates)
		// are this run's.
		prefix := dynamotest.Prefix("devtest")
		devEndToEnd(t, bin, "--dynamodb-endpoint", endpoint, "--table-prefix", prefix)
	})
}

// devProcess is a running `streamer dev`.
type devProcess struct {
	cmd             *exec.Cmd
	wsURL, endpoint string
	lines           chan string
	exited          chan error
	// stdout collects what the process printed after its URLs; read both
	// only after exited has delivered.
	stdout []string
	stderr *strings.Builder
}

// startDevProcess runs the binary with args and waits for its URLs.
func startDevProcess(t testing.TB, bin string, args ...string) *devProcess {
	t.Helper()
	p := &devProcess{
		cmd:    exec.Command(bin, append([]string{"dev", "--addr", "127.0.0.1:0", "--log-level", "debug"}, args...)...),
		lines:  make(chan string, 16),
		exited: make(chan error, 1),
		stderr: new(strings.Builder),
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			for range p.lines {
			}
			<-p.exited
		}
		if t.Failed() {
			t.Logf("streamer dev stderr:\n%s", p.stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- p.cmd.Wait()
	}()
	timeout := time.After(20 * time.Second)
	for p.wsURL == "" || p.endpoint == "" {
		select {
		case l, ok := <-p.lines:
			if !ok {
				<-p.exited
				t.Fatalf("streamer dev exited before printing its URLs:\n%s", p.stderr.String())
			}
			p.stdout = append(p.stdout, l)
			if v, ok := strings.CutPrefix(l, "WebSocket URL:"); ok {
				p.wsURL = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "Management endpoint:"); ok {
				p.endpoint = strings.TrimSpace(v)
			}
		case <-timeout:
			t.Fatal("no URLs printed within 20 s")
		}
	}
	if !strings.HasPrefix(p.wsURL, "ws://127.0.0.1:") || !strings.HasPrefix(p.endpoint, "http://127.0.0.1:") {
		t.Fatalf("urls %q %q", p.wsURL, p.endpoint)
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit (status 0).
func (p *devProcess) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range p.lines {
		p.stdout = append(p.stdout, l)
	}
	if err := <-p.exited; err != nil {
		t.Errorf("streamer dev exited with %v, want 0", err)
	}
}

// client is one WebSocket connection to the demo.
type client struct {
	t testing.TB
	c *websocket.Conn
}

func dialDev(ctx context.Context, t testing.TB, url string, opts *websocket.DialOptions) *client {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, c: c}
}

func (c *client) send(ctx context.Context, msg string) {
	c.t.Helper()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

// serverMessage is any server → client message, read generically.
type serverMessage struct {
	Type       protocol.MessageType `json:"type"`
	RequestID  string               `json:"request_id"`
	Data       json.RawMessage      `json:"data"`
	Result     json.RawMessage      `json:"result"`
	Percentage float64              `json:"percentage"`
	Code       protocol.ErrorCode   `json:"code"`
}

func (c *client) read(ctx context.Context) serverMessage {
	c.t.Helper()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	var m serverMessage
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s: %v", b, err)
	}
	return m
}

func (c *client) whoami(ctx context.Context) demo.Identity {
	c.t.Helper()
	// The payload's identity is a spoof the server must ignore.
	c.send(ctx, `{"type":"request","id":"who","action":"whoami","payload":{"userId":"evil","tenantId":"other"}}`)
	m := c.read(ctx)
	var who demo.Identity
	if m.Type != protocol.TypeResponse || m.RequestID != "who" {
		c.t.Fatalf("whoami reply %+v", m)
	}
	if err := json.Unmarshal(m.Data, &who); err != nil {
		c.t.Fatal(err)
	}
	return who
}

// runReport submits a report and reads to its complete, checking the
// progress arrives in order and ends at 100.
func (c *client) runReport(ctx context.Context, id string, seconds float64) demo.ReportResult {
	c.t.Helper()
	c.send(ctx, fmt.Sprintf(`{"type":"request","id":%q,"action":"report","payload":{"seconds":%g}}`, id, seconds))
	ack := c.read(ctx)
	if ack.Type != protocol.TypeAck || ack.RequestID == "" {
		c.t.Fatalf("report ack %+v", ack)
	}
	last := -1.0
	for {
		m := c.read(ctx)
		if m.RequestID != ack.RequestID {
			c.t.Fatalf("message for another request: %+v", m)
		}
		if m.Type == protocol.TypeComplete {
			if last != 100 {
				c.t.Errorf("complete after progress %v, want 100 first", last)
			}
			var res demo.ReportResult
			if err := json.Unmarshal(m.Result, &res); err != nil {
				c.t.Fatalf("result %s: %v", m.Result, err)
			}
			return res
		}
		if m.Type != protocol.TypeProgress || m.Percentage <= last {
			c.t.Fatalf("after progress %v: %+v", last, m)
		}
		last = m.Percentage
	}
}

func devEndToEnd(t *testing.T, bin string, extra ...string) {
	p := startDevProcess(t, bin, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dialDev(ctx, t, p.wsURL, nil)

	who := c.whoami(ctx)
	if who.UserID != "anonymous" || who.TenantID != "default" || who.ConnectionID == "" {
		t.Fatalf("whoami %+v", who)
	}
	c.send(ctx, `{"type":"request","id":"e","action":"echo","payload":{"hello":"world"}}`)
	if m := c.read(ctx); m.Type != protocol.TypeResponse || m.RequestID != "e" || string(m.Data) != `{"hello":"world"}` {
		t.Fatalf("echo %+v data %s", m, m.Data)
	}
	if res := c.runReport(ctx, "rep-1", 0.5); res.Steps != 5 {
		t.Errorf("report result %+v", res)
	}

	// Cancel a long report once it runs.
	c.send(ctx, `{"type":"request","id":"rep-2","action":"report","payload":{"seconds":60}}`)
	ack := c.read(ctx)
	if ack.Type != protocol.TypeAck {
		t.Fatalf("ack %+v", ack)
	}
	if m := c.read(ctx); m.Type != protocol.TypeProgress {
		t.Fatalf("first message after the ack %+v", m)
	}
	c.send(ctx, `{"type":"cancel","request_id":"`+ack.RequestID+`"}`)
	for {
		m := c.read(ctx)
		if m.Type == protocol.TypeError && m.Code == protocol.CodeCancelled && m.RequestID == ack.RequestID {
			break
		}
		if m.Type != protocol.TypeProgress {
			t.Fatalf("waiting for CANCELLED: %+v", m)
		}
	}
	// No complete follows; the ping's pong may trail progress already sent.
	c.send(ctx, `{"type":"ping"}`)
	for {
		m := c.read(ctx)
		if m.Type == protocol.TypePong {
			break
		}
		if m.Type != protocol.TypeProgress {
			t.Fatalf("after CANCELLED: %+v", m)
		}
	}

	api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(p.endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
		Retryer:      aws.NopRetryer{},
	})
	id := aws.String(who.ConnectionID)
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: id, Data: []byte("from the SDK")}); err != nil {
		t.Fatal(err)
	}
	if b, err := readPastProgress(ctx, c); err != nil || string(b) != "from the SDK" {
		t.Fatalf("read %q, %v", b, err)
	}
	got, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id})
	if err != nil || got.ConnectedAt == nil || aws.ToString(got.Identity.SourceIp) != "127.0.0.1" {
		t.Fatalf("GetConnection %+v, %v", got, err)
	}
	if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := readPastProgress(ctx, c); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after DELETE the client read %v, want close 1000", err)
	}
	var gone *types.GoneException
	if _, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: id}); !errors.As(err, &gone) {
		t.Fatalf("GetConnection after DELETE: %v, want GoneException", err)
	}

	// A second client is open when SIGTERM arrives.
	c2 := dialDev(ctx, t, p.wsURL, nil)
	closed := make(chan error, 1)
	go func() {
		// Progress of the cancelled report may still reach the user's
		// other connection (the worker notices the cancel at its next
		// store write), and the processor now stops before the gateway.
		for {
			if _, _, err := c2.c.Read(ctx); err != nil {
				closed <- err
				return
			}
		}
	}()
	p.stop(t)
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("on SIGTERM the client read %v, want close 1001", err)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "code=1001") {
		t.Errorf("no $disconnect with 1001 logged:\n%s", logs)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "AUTH IS OFF") {
		t.Errorf("no WARN that auth is off:\n%s", logs)
	}
	if out := strings.Join(p.stdout, "\n"); !strings.Contains(out, "Auth:                OFF") {
		t.Errorf("stdout does not say auth is off:\n%s", out)
	}
}

// readPastProgress reads the next message that is not a progress update:
// the worker of a cancelled report notices the cancel only at its next
// store write, so a progress sent just before may still trail the
// CANCELLED error, the pong and whatever the test reads next.
func readPastProgress(ctx context.Context, c *client) ([]byte, error) {
	for {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m struct {
			Type protocol.MessageType `json:"type"`
		}
		if json.Unmarshal(b, &m) == nil && m.Type == protocol.TypeProgress {
			continue
		}
		return b, nil
	}
}

// TestDevJWT runs `streamer dev` with RS256 auth: a valid token (header or
// query parameter) connects as its subject and tenant; expired,
// wrong-audience, wrongly signed and absent tokens are refused with 401 on
// the upgrade; no token ever appears in the process's output.
func TestDevJWT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	const audience = "streamer-test"
	mint := func(k *rsa.PrivateKey, sub, aud string, exp time.Time) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"sub": sub, "tenant_id": "acme", "permissions": []string{"reports:read"},
			"aud": aud, "exp": exp.Unix(), "iat": time.Now().Unix(),
		}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	hour := time.Now().Add(time.Hour)
	valid := mint(key, "alice", audience, hour)
	validQuery := mint(key, "bob", audience, hour)
	refused := map[string]string{
		"expired":        mint(key, "alice", audience, time.Now().Add(-time.Hour)),
		"wrong audience": mint(key, "alice", "someone-else", hour),
		"wrong key":      mint(otherKey, "alice", audience, hour),
	}

	p := startDevProcess(t, bin, "--jwt-algorithms", "RS256", "--jwt-public-key", pemFile, "--jwt-audience", audience)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := dialDev(ctx, t, p.wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + valid}}})
	if who := c.whoami(ctx); who.UserID != "alice" || who.TenantID != "acme" || len(who.Permissions) != 1 || who.Permissions[0] != "reports:read" {
		t.Errorf("whoami with a header token: %+v", who)
	}
	cq := dialDev(ctx, t, p.wsURL+"?token="+url.QueryEscape(validQuery), nil)
	if who := cq.whoami(ctx); who.UserID != "bob" || who.TenantID != "acme" {
		t.Errorf("whoami with a query token: %+v", who)
	}
	if res := c.runReport(ctx, "r", 0.2); res.Steps != 2 {
		t.Errorf("report as alice: %+v", res)
	}

	refusals := map[string]*websocket.DialOptions{"no token": nil}
	for name, tok := range refused {
		refusals[name+" (header)"] = &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}}
	}
	for name, opts := range refusals {
		c, resp, err := websocket.Dial(ctx, p.wsURL, opts)
		if err == nil {
			c.CloseNow()
			t.Errorf("%s: connected", name)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %v, response %v, want 401", name, err, resp)
		}
	}
	for name, tok := range refused {
		c, resp, err := websocket.Dial(ctx, p.wsURL+"?token="+url.QueryEscape(tok), nil)
		if err == nil {
			c.CloseNow()
			t.Errorf("%s (query): connected", name)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s (query): %v, response %v, want 401", name, err, resp)
		}
	}

	p.stop(t)
	output := p.stderr.String() + strings.Join(p.stdout, "\n")
	if !strings.Contains(output, "Auth:                JWT (RS256)") {
		t.Errorf("stdout does not say auth is on:\n%s", output)
	}
	if !strings.Contains(output, "connection refused") {
		t.Errorf("no refusal logged (is the debug log captured?):\n%s", output)
	}
	tokens := []string{valid, validQuery}
	for _, tok := range refused {
		tokens = append(tokens, tok)
	}
	for _, tok := range tokens {
		// The signature alone is secret enough to look for: any fragment
		// of a token in a log is a leak.
		sig := tok[strings.LastIndex(tok, ".")+1:]
		if strings.Contains(output, sig) {
			t.Errorf("a token appears in the output of streamer dev:\n%s", output)
		}
	}
}

// syncBuffer is a strings.Builder safe for a logger writing while a test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// TestDevShutdownCancelsRunningReportAtTheDeadline: a report still running
// when the shutdown deadline passes is cancelled (its handler honours the
// context), shutdown still succeeds, and nothing is left running (goleak
// in TestMain). The budget is 4s so that the reserve kept after the
// processor's deadline is the full second: the cancelled handler's
// requeue, the 1001 close and $disconnect fit in it on a loaded machine,
// where a 500ms budget's 125ms reserve ran out before the sockets closed.
func TestDevShutdownCancelsRunningReportAtTheDeadline(t *testing.T) {
	o, err := parseDevFlags([]string{"--addr", "127.0.0.1:0", "--shutdown-timeout", "4s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := startDev(ctx, o, logger, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := dialDev(ctx, t, s.wsURL, nil)
	c.send(ctx, `{"type":"request","id":"long","action":"report","payload":{"seconds":60}}`)
	if m := c.read(ctx); m.Type != protocol.TypeAck {
		t.Fatalf("ack %+v", m)
	}
	if m := c.read(ctx); m.Type != protocol.TypeProgress {
		t.Fatalf("progress %+v", m)
	}
	// The client keeps reading, so it answers the server's close frame.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.c.Read(ctx); err != nil {
				closed <- err
				return
			}
		}
	}()
	sctx, scancel := context.WithTimeout(ctx, o.shutdownTimeout)
	defer scancel()
	if err := s.shutdown(sctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("client read %v, want close 1001", err)
	}
	if l := logs.String(); !strings.Contains(l, "async handlers cancelled at the shutdown deadline") {
		t.Errorf("no warning about the cancelled report:\n%s", l)
	}
}

// TestDevJWKSFile: --jwt-jwks loads a key set, and a token naming a key
// of the set by kid verifies with the configured claim names.
func TestDevJWKSFile(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256","x":%q,"y":%q}]}`, b64(pt[1:33]), b64(pt[33:]))
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, []byte(jwks), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseDevFlags([]string{"--jwt-algorithms", "ES256", "--jwt-jwks", file, "--jwt-issuer", "https://issuer",
		"--jwt-user-claim", "uid", "--jwt-permissions-claim", "scope"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := o.jwt.verifier(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"uid": "dave", "iss": "https://issuer", "scope": "a b",
		"exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), signed)
	if err != nil || id.UserID != "dave" || !reflect.DeepEqual(id.Permissions, []string{"a", "b"}) {
		t.Errorf("Verify: %+v, %v", id, err)
	}
	// The issuer flag is enforced.
	bad, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"uid": "dave", "iss": "https://other",
		"exp": time.Now().Add(time.Minute).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), bad); !errors.Is(err, auth.ErrInvalidIssuer) {
		t.Errorf("wrong issuer: %v, want ErrInvalidIssuer", err)
	}
}
