package awsproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/runtime/awsproxy"
	"github.com/streamer-go/streamer/runtime/invokeapi"
	"github.com/streamer-go/streamer/runtime/tlsmux"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fixture is a proxy in front of recording stand-ins for the local
// services: the gateway's management API, DynamoDB and the Invoke API.
type fixture struct {
	p      *awsproxy.Proxy
	ca     *tlsmux.CA
	caFile string
	logs   *syncBuffer

	mu    sync.Mutex
	posts []string // "host path body" of each management API call
}

type echoFn struct{}

func (echoFn) Invoke(_ context.Context, p []byte) ([]byte, error) { return p, nil }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := tlsmux.NewCA("localhost")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ca: ca, logs: &syncBuffer{}, caFile: filepath.Join(t.TempDir(), "ca.pem")}
	if err := ca.WritePEM(f.caFile); err != nil {
		t.Fatal(err)
	}
	gateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.posts = append(f.posts, r.Host+" "+r.URL.Path+" "+string(b))
		f.mu.Unlock()
	})
	ddb := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.ListTables" {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Seen-Over", map[bool]string{true: "tls", false: "plain"}[r.TLS != nil])
		io.WriteString(w, `{"TableNames":["seen-at-`+r.Host+`"]}`)
	})
	inv := invokeapi.New(invokeapi.Config{Functions: map[string]invokeapi.Function{"app-Echo": echoFn{}}})
	f.p, err = awsproxy.New(awsproxy.Config{
		Region: "us-east-1", APIID: "abc123", CA: ca,
		ExecuteAPI: gateway, DynamoDB: ddb, Lambda: inv,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.p.Close()
		inv.Shutdown(context.Background())
	})
	return f
}

// countingTransport counts the requests a client sends.
type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestResolvesTheServedHostnamesThroughConnect(t *testing.T) {
	f := newFixture(t)
	door, err := f.p.Listen("app-Caller")
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, _ := url.Parse("http://" + door)
	base := &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool()}}
	defer base.CloseIdleConnections()
	rt := &countingTransport{rt: base}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""), HTTPClient: &http.Client{Transport: rt}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	tables, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil || len(tables.TableNames) != 1 || tables.TableNames[0] != "seen-at-dynamodb.us-east-1.amazonaws.com" {
		t.Fatalf("ListTables: %v, %v", tables, err)
	}
	out, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("app-Echo"), Payload: []byte(`{"hi":1}`)})
	if err != nil || string(out.Payload) != `{"hi":1}` {
		t.Fatalf("Invoke: %v, %v", out, err)
	}
	mgmt := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String("https://abc123.execute-api.us-east-1.amazonaws.com/prod")
	})
	if _, err := mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("Cx="), Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	posts := strings.Join(f.posts, "\n")
	f.mu.Unlock()
	if posts != "abc123.execute-api.us-east-1.amazonaws.com /prod/@connections/Cx= hello" {
		t.Errorf("management API got %q", posts)
	}

	// A service the runtime does not serve fails at once, once per
	// call (no retries), with an error the SDK surfaces by code.
	before := rt.n.Load()
	start := time.Now()
	for range 2 {
		_, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != awsproxy.NotEmulatedCode || !strings.Contains(api.ErrorMessage(), "not emulated: sts called by app-Caller") {
			t.Fatalf("GetCallerIdentity: %v", err)
		}
	}
	if n := rt.n.Load() - before; n != 2 {
		t.Errorf("two calls sent %d requests: the SDK retried", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("two refused calls took %v", d)
	}
	// Another API id, another Region: not this runtime's.
	for _, endpoint := range []string{"https://zzz999.execute-api.us-east-1.amazonaws.com/prod", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"} {
		m := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) { o.BaseEndpoint = aws.String(endpoint) })
		_, err := m.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("Cx="), Data: []byte("x")})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != awsproxy.NotEmulatedCode {
			t.Errorf("%s: %v", endpoint, err)
		}
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "level=WARN msg=\"not emulated: sts called by app-Caller\""); n != 1 {
		t.Errorf("%d warnings for sts, want one:\n%s", n, logs)
	}
	if !strings.Contains(logs, "not emulated: execute-api called by app-Caller") {
		t.Errorf("no line for the unknown API:\n%s", logs)
	}
}

// env is the environment a function process gets, as the stack builds it.
func (f *fixture) env(t *testing.T, caller string) []string {
	t.Helper()
	door, err := f.p.Listen(caller)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := awsproxy.WriteNodeHook(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return append(awsproxy.Env(door, hook, ""),
		"PATH="+os.Getenv("PATH"), "HOME="+t.TempDir(),
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CA_BUNDLE="+f.caFile, "NODE_EXTRA_CA_CERTS="+f.caFile, "SSL_CERT_FILE="+f.caFile)
}

const pythonScript = `
import json, boto3, botocore
out = {}
out["tables"] = boto3.client("dynamodb").list_tables()["TableNames"]
r = boto3.client("lambda").invoke(FunctionName="app-Echo", Payload=b'{"py":1}')
out["invoke"] = r["Payload"].read().decode()
out["event"] = boto3.client("lambda").invoke(FunctionName="app-Echo", InvocationType="Event", Payload=b'{}')["StatusCode"]
m = boto3.client("apigatewaymanagementapi", endpoint_url="https://abc123.execute-api.us-east-1.amazonaws.com/dev")
m.post_to_connection(ConnectionId="Py=", Data=b"from python")
try:
    boto3.client("sqs").list_queues()
except botocore.exceptions.ClientError as e:
    out["sqs"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
print(json.dumps(out))
`

func TestPythonBoto3ThroughHTTPSProxy(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 not installed for python3")
	}
	f := newFixture(t)
	cmd := exec.Command("python3", "-c", pythonScript)
	cmd.Env = f.env(t, "app-Py")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		Tables []string
		Invoke string
		Event  int
		SQS    []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got.Tables) != 1 || got.Tables[0] != "seen-at-dynamodb.us-east-1.amazonaws.com" || got.Invoke != `{"py":1}` || got.Event != 202 {
		t.Errorf("python saw %+v", got)
	}
	if len(got.SQS) != 2 || got.SQS[0] != "NotEmulated" || !strings.Contains(got.SQS[1], "not emulated: sqs called by app-Py") {
		t.Errorf("sqs: %q", got.SQS)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.posts) != 1 || f.posts[0] != "abc123.execute-api.us-east-1.amazonaws.com /dev/@connections/Py= from python" {
		t.Errorf("management API got %q", f.posts)
	}
}

// nodeScript calls AWS hostnames the way the JavaScript SDKs (v2 and v3's
// node-http-handler) do: https.request with an Agent of their own (and
// https.get, and a URL string, as hand-written code does).
const nodeScript = `
const https = require('node:https');
const agent = new https.Agent({ keepAlive: true });
function call(host, headers, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host, path: '/', method: 'POST', agent, headers }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['x-amzn-errortype'], over: res.headers['x-seen-over'], body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
function get(url) {
  return new Promise((resolve, reject) => {
    https.get(url, { headers: { 'x-amz-target': 'DynamoDB_20120810.ListTables' } }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, over: res.headers['x-seen-over'], body: data }));
    }).on('error', reject);
  });
}
(async () => {
  const ddb = await call('dynamodb.us-east-1.amazonaws.com', { 'x-amz-target': 'DynamoDB_20120810.ListTables', 'content-type': 'application/x-amz-json-1.0' }, '{}');
  const sqs = await call('sqs.us-east-1.amazonaws.com', { 'content-type': 'application/x-amz-json-1.0' }, '{}');
  const byURL = await get('https://dynamodb.us-east-1.amazonaws.com/');
  console.log(JSON.stringify({ ddb, sqs, byURL }));
  agent.destroy();
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestNodeHookRoutesAWSRequests: the hook sends a Node.js https request
// to an AWS hostname to the door, over plain HTTP on loopback with the
// hostname as its Host, whatever form the call takes.
func TestNodeHookRoutesAWSRequests(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	f := newFixture(t)
	cmd := exec.Command("node", "-e", nodeScript)
	cmd.Env = f.env(t, "app-Node")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	type answer struct {
		Status int
		Type   string
		Over   string
		Body   string
	}
	var got struct{ DDB, SQS, ByURL answer }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for name, a := range map[string]answer{"request": got.DDB, "get by URL": got.ByURL} {
		if a.Status != 200 || a.Over != "plain" || a.Body != `{"TableNames":["seen-at-dynamodb.us-east-1.amazonaws.com"]}` {
			t.Errorf("dynamodb, %s: %+v", name, a)
		}
	}
	if got.SQS.Status != http.StatusNotImplemented || got.SQS.Type != "NotEmulated" || !strings.Contains(got.SQS.Body, "not emulated: sqs called by app-Node") {
		t.Errorf("sqs: %+v", got.SQS)
	}
}

func TestResolve(t *testing.T) {
	f := newFixture(t)
	door, err := f.p.Listen("app-X")
	if err != nil {
		t.Fatal(err)
	}
	proxyURL, _ := url.Parse("http://" + door)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool()}}}
	defer client.CloseIdleConnections()
	for host, want := range map[string]string{
		"bucket.s3.us-east-1.amazonaws.com": "<Code>NotEmulated</Code>",
		"s3.amazonaws.com":                  "<Code>NotEmulated</Code>",
		"sts.amazonaws.com":                 "not emulated: sts called by app-X",
		"events.us-east-1.amazonaws.com":    "not emulated: events called by app-X",
		"dynamodb.eu-west-1.amazonaws.com":  "serves Region us-east-1, not eu-west-1",
	} {
		resp, err := client.Post("https://"+host+"/", "application/x-amz-json-1.1", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented || resp.Header.Get("X-Amzn-Errortype") != "NotEmulated" || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %s", host, resp.StatusCode, b)
		}
	}
}

// TestHTTP2ClientsAreServed: SDK clients that speak only HTTP/2 (the
// JavaScript SDK's Bedrock runtime client) reach the door's TLS server
// directly, as the Node.js hook sends them, and get the not-emulated
// answer over HTTP/2.
func TestHTTP2ClientsAreServed(t *testing.T) {
	f := newFixture(t)
	door, err := f.p.Listen("app-H2")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: f.ca.Pool(), NextProtos: []string{"h2"}},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, door)
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Post("https://bedrock-runtime.eu-west-2.amazonaws.com/model/x/invoke", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(b), "not emulated: bedrock-runtime called by app-H2") {
		t.Errorf("%s %d %s", resp.Proto, resp.StatusCode, b)
	}
}

// sessionScript makes three TLS connections to each of two local TLS
// servers (the door by an AWS hostname with tls.connect, as HTTP/2
// clients connect, and a server on loopback that is not known to serve
// plain HTTP with https.request, each call with an Agent of its own, as
// an SDK client built per invocation does) and prints whether each
// connection's TLS session was resumed.
const sessionScript = `
const https = require('node:https');
const tls = require('node:tls');
function call(host, port) {
  return new Promise((resolve, reject) => {
    const agent = new https.Agent({ keepAlive: true });
    const req = https.request({ host, port, path: '/', method: 'POST', agent }, (res) => {
      const reused = res.socket.isSessionReused();
      res.resume();
      res.on('end', () => { agent.destroy(); resolve(reused); });
    });
    req.on('error', reject);
    req.end('{}');
  });
}
function connect(host) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port: 443, servername: host, ALPNProtocols: ['http/1.1'] }, () => {
      // TLS 1.3 sends its session ticket after the handshake: wait
      // for it before closing.
      const reused = s.isSessionReused();
      s.once('session', () => { s.end(); resolve(reused); });
    });
    s.on('error', reject);
  });
}
(async () => {
  const out = { aws: [], loopback: [] };
  for (let i = 0; i < 3; i++) out.aws.push(await connect('dynamodb.us-east-1.amazonaws.com'));
  for (let i = 0; i < 3; i++) out.loopback.push(await call('localhost', Number(process.env.LOCAL_PORT)));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestNodeHookResumesTLSSessions checks that the hook offers the TLS
// session of a local server to the next connection of the process, even
// from another Agent: only the first call pays a full handshake.
func TestNodeHookResumesTLSSessions(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, f.ca.ServerConfig()))
	}()
	t.Cleanup(func() { srv.Close(); <-done })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	cmd := exec.Command("node", "-e", sessionScript)
	cmd.Env = append(f.env(t, "app-Node"), "LOCAL_PORT="+port)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct{ AWS, Loopback []bool }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := []bool{false, true, true}
	if !slices.Equal(got.AWS, want) || !slices.Equal(got.Loopback, want) {
		t.Errorf("sessions resumed: door %v, loopback %v; want %v for each", got.AWS, got.Loopback, want)
	}
}

// plainScript posts three times to a local server by its https URL, each
// time with an Agent of its own, as an SDK client built per invocation
// does.
const plainScript = `
const https = require('node:https');
function call(i) {
  return new Promise((resolve, reject) => {
    const agent = new https.Agent({ keepAlive: true });
    const req = https.request('https://localhost:' + process.env.LOCAL_PORT + '/prod/@connections/C' + i,
      { method: 'POST', agent, headers: { 'content-type': 'text/plain' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
    req.on('error', reject);
    req.end('hello ' + i);
  });
}
(async () => {
  const out = [];
  for (let i = 0; i < 3; i++) out.push(await call(i));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestNodeHookSendsLocalServersPlainHTTP: a local server that
// LocalHTTPEnv names (the gateway's port serves TLS and plain HTTP) gets
// a function's https requests over plain HTTP, with the Host the https
// URL gives, on one keep-alive socket shared by the per-call Agents.
func TestNodeHookSendsLocalServersPlainHTTP(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		seen  []string
		conns atomic.Int32
	)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%s %s %s %s tls=%t", r.Method, r.Host, r.URL.Path, b, r.TLS != nil))
			mu.Unlock()
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	mux := tlsmux.Listen(ln, f.ca.ServerConfig())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(mux)
	}()
	t.Cleanup(func() { srv.Close(); mux.Wait(); <-done })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	cmd := exec.Command("node", "-e", plainScript)
	cmd.Env = append(f.env(t, "app-Node"), "LOCAL_PORT="+port, awsproxy.LocalHTTPEnv("localhost:"+port, "127.0.0.1:"+port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "[200,200,200]" {
		t.Errorf("statuses %s", out)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"POST localhost:" + port + " /prod/@connections/C0 hello 0 tls=false",
		"POST localhost:" + port + " /prod/@connections/C1 hello 1 tls=false",
		"POST localhost:" + port + " /prod/@connections/C2 hello 2 tls=false",
	}
	if !slices.Equal(seen, want) {
		t.Errorf("server saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for three calls, want one kept alive across the Agents", n)
	}
}

// TestDoorServesPlainHTTPByHost: over plain HTTP the door serves a
// request whose Host is an AWS hostname (what the Node.js hook sends) and
// refuses anything else: another Host, or a proxy's absolute URI.
func TestDoorServesPlainHTTPByHost(t *testing.T) {
	f := newFixture(t)
	door, err := f.p.Listen("app-Plain")
	if err != nil {
		t.Fatal(err)
	}
	send := func(raw string) (int, string) {
		t.Helper()
		c, err := net.Dial("tcp", door)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const body = "{}"
	req := func(target, host string) string {
		return "POST " + target + " HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n" +
			"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n" + body
	}
	if code, b := send(req("/", "dynamodb.us-east-1.amazonaws.com")); code != 200 || b != `{"TableNames":["seen-at-dynamodb.us-east-1.amazonaws.com"]}` {
		t.Errorf("AWS Host: %d %s", code, b)
	}
	if code, b := send(req("/", "example.com")); code != http.StatusBadRequest {
		t.Errorf("foreign Host: %d %s", code, b)
	}
	if code, b := send(req("http://dynamodb.us-east-1.amazonaws.com/", "dynamodb.us-east-1.amazonaws.com")); code != http.StatusBadRequest {
		t.Errorf("absolute URI: %d %s", code, b)
	}
}
