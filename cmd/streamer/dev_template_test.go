package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

var (
	exampleOnce sync.Once
	exampleDir  string
	exampleErr  error
)

// exampleLambda builds examples/lambda once, as deploy/README.md says (for
// this machine's OS and architecture), and returns a folder holding a copy
// of deploy/template.json with the binary in build/, where its CodeUri
// points.
func exampleLambda(t testing.TB) string {
	t.Helper()
	exampleOnce.Do(func() {
		if binDir == "" {
			buildBinary(t)
		}
		exampleDir = filepath.Join(binDir, "deploy")
		if exampleErr = os.MkdirAll(filepath.Join(exampleDir, "build"), 0o755); exampleErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-ldflags=-s -w", "-o", filepath.Join(exampleDir, "build", "bootstrap"), "../../examples/lambda")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			exampleErr = fmt.Errorf("go build examples/lambda: %v\n%s", err, out)
			return
		}
		b, err := os.ReadFile("../../deploy/template.json")
		if err != nil {
			exampleErr = err
			return
		}
		exampleErr = os.WriteFile(filepath.Join(exampleDir, "template.json"), b, 0o644)
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	return exampleDir
}

func TestParseTemplateFlags(t *testing.T) {
	o, err := parseDevFlags([]string{"--template", "t.yaml", "--parameter-overrides", "A=1 B=2", "--parameter-overrides", "C=3", "--function-concurrency", "2", "--no-watch", "--runtime", "nodejs22.x=/opt/node22", "--node-sdk", "/tmp/sdk",
		"--function-idle-timeout", "30s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := templateOptions{path: "t.yaml", overrides: []string{"A=1", "B=2", "C=3"}, concurrency: 2, stackName: "local", region: "us-east-1", noWatch: true, runtimes: []string{"nodejs22.x=/opt/node22"}, nodeSDK: "/tmp/sdk", idleReap: 30 * time.Second}
	if !reflect.DeepEqual(o.tpl, want) {
		t.Fatalf("options %+v, want %+v", o.tpl, want)
	}
}

// transcript is a session's messages as each client saw them, normalised
// only where two runtimes may rightly differ: server request IDs become
// R1, R2... in order of appearance, and a run of progress messages of one
// request counts as one line, the last of the run, because the progress
// reporter drops updates by time (a busy machine delays one tick and the
// next replaces it). Every progress message of a run is checked to be one
// of the report action's own steps, in order (errs lists the ones that are
// not). Everything else of every message is kept: fields, data, results,
// error codes and texts, as canonical JSON.
type transcript struct {
	lines []string
	ids   map[string]string
	errs  []string
	// run is the client and request of the progress run the last line
	// ends, and step its last step; empty when the last line is not
	// progress.
	run  string
	step int
}

// add records what client who received and returns it parsed.
func (tr *transcript) add(who string, raw []byte) serverMessage {
	var m serverMessage
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		tr.errs = append(tr.errs, fmt.Sprintf("%s got %q: %v", who, raw, err))
		return m
	}
	// A broadcast copy is the app's JSON in a relay envelope.
	_ = json.Unmarshal(raw, &m)
	if obj, ok := v.(map[string]any); ok {
		if rid, ok := obj["request_id"].(string); ok && strings.HasPrefix(rid, "r-") {
			if tr.ids[rid] == "" {
				tr.ids[rid] = fmt.Sprintf("R%d", len(tr.ids)+1)
			}
			obj["request_id"] = tr.ids[rid]
		}
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		tr.errs = append(tr.errs, fmt.Sprintf("%s got %q: %v", who, raw, err))
		return m
	}
	line := who + " " + string(b)
	if m.Type != protocol.TypeProgress {
		tr.run, tr.step = "", 0
		tr.lines = append(tr.lines, line)
		return m
	}
	var p protocol.Progress
	_ = json.Unmarshal(raw, &p)
	step := tr.checkProgress(who, p)
	run := who + " " + m.RequestID
	if run == tr.run && len(tr.lines) > 0 {
		if step <= tr.step {
			tr.errs = append(tr.errs, fmt.Sprintf("%s: progress %q after step %d", who, p.Message, tr.step))
		}
		tr.lines[len(tr.lines)-1] = line
	} else {
		tr.lines = append(tr.lines, line)
	}
	tr.run, tr.step = run, step
	return m
}

// checkProgress checks p is a step of the report action (both apps':
// "step i of n" at 100*i/n percent, or "done" at 100 for a zero-length
// run) and returns i.
func (tr *transcript) checkProgress(who string, p protocol.Progress) int {
	if p.Message == "done" && p.Percentage == 100 {
		return 1
	}
	var i, n int
	if _, err := fmt.Sscanf(p.Message, "step %d of %d", &i, &n); err != nil || i < 1 || i > n || p.Percentage != float64(100*i)/float64(n) {
		tr.errs = append(tr.errs, fmt.Sprintf("%s: progress %g %q is no step of report", who, p.Percentage, p.Message))
	}
	return i
}

// paritySession is the scenario both runtimes must answer alike. alice
// (tenant acme) connects with a JWT, echoes, runs an async report through
// the stream processor to its complete; bob (acme) and carol (globex)
// connect and alice broadcasts: alice gets her copy then the count, bob
// his copy, carol nothing (her next message is the answer to a ping).
// Then all disconnect, and alice reconnects and resumes the report.
func paritySession(t *testing.T, wsURL string, tokens map[string]string) *transcript {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := &transcript{ids: map[string]string{}}
	dial := func(who string) *client {
		return dialDev(ctx, t, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tokens[who]}}})
	}
	read := func(who string, c *client) serverMessage {
		t.Helper()
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		return tr.add(who, b)
	}

	alice := dial("alice")
	alice.send(ctx, `{"type":"request","id":"e1","action":"echo","payload":{"text":"hi"}}`)
	read("alice", alice)
	alice.send(ctx, `{"type":"request","id":"job-1","action":"report","payload":{"seconds":0.3}}`)
	var reportID string
	var last serverMessage
	for {
		m := read("alice", alice)
		if m.Type == protocol.TypeAck {
			reportID = m.RequestID
		}
		if m.Type == protocol.TypeComplete || m.Type == protocol.TypeError {
			break
		}
		last = m
	}
	// Updates may be dropped in between, never the last one.
	if last.Type != protocol.TypeProgress || last.Percentage != 100 {
		t.Errorf("the report's last message before its end is %s at %g%%, want progress at 100%%", last.Type, last.Percentage)
	}

	bob, carol := dial("bob"), dial("carol")
	alice.send(ctx, `{"type":"request","id":"b1","action":"broadcast","payload":{"text":"all"}}`)
	if m := read("alice", alice); m.Type != protocol.TypeRelay {
		t.Errorf("alice's first message after broadcasting is %s, want her copy", m.Type)
	}
	if m := read("alice", alice); m.Type != protocol.TypeResponse || string(m.Data) != `{"recipients":2,"delivered":2}` {
		t.Errorf("broadcast answered %s %s, want the two connections of acme", m.Type, m.Data)
	}
	if m := read("bob", bob); m.Type != protocol.TypeRelay {
		t.Errorf("bob got %s, want the copy", m.Type)
	}
	// The copies were posted before alice's answer, so one to carol
	// would come before her pong.
	carol.send(ctx, `{"type":"ping"}`)
	if m := read("carol", carol); m.Type != protocol.TypePong {
		t.Errorf("carol (another tenant) got %s before her pong", m.Type)
	}
	for _, c := range []*client{bob, carol, alice} {
		c.c.Close(websocket.StatusNormalClosure, "bye")
	}

	alice = dial("alice")
	alice.send(ctx, `{"type":"resume","request_id":"`+reportID+`"}`)
	read("alice", alice)
	alice.send(ctx, `{"type":"resume","request_id":"r-unknown"}`)
	read("alice", alice)
	alice.send(ctx, `{"type":"ping"}`)
	read("alice", alice)
	alice.c.Close(websocket.StatusNormalClosure, "bye")
	return tr
}

// TestTemplateParityWithTheDemo runs the deployed binary (examples/lambda)
// through `streamer dev --template deploy/template.json` with dynalite and
// the same scenario (paritySession: echo, report with progress, broadcast
// within a tenant, resume after reconnect) through the in-process
// `streamer dev`, both with RS256 JWT auth: each client gets the same
// messages, with the same content, in the same order.
func TestTemplateParityWithTheDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	endpoint := dynamotest.Endpoint(t)
	bin := buildBinary(t)
	dir := exampleLambda(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
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
	tokens := map[string]string{}
	for who, tenant := range map[string]string{"alice": "acme", "bob": "acme", "carol": "globex"} {
		tokens[who], err = jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"sub": who, "tenant_id": tenant, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
	}

	demoRun := startDevProcess(t, bin, "--jwt-algorithms", "RS256", "--jwt-public-key", pemFile)
	wantRun := paritySession(t, demoRun.wsURL, tokens)
	want := wantRun.lines
	demoRun.stop(t)

	prefix := dynamotest.Prefix("tpl")
	tplRun := startDevProcess(t, bin, "--template", filepath.Join(dir, "template.json"), "--dynamodb-endpoint", endpoint, "--no-watch",
		"--parameter-overrides", "StageName=dev TablePrefix="+prefix+" JWTAlgorithms=RS256 JWTKeyFile="+pemFile)
	gotRun := paritySession(t, tplRun.wsURL, tokens)
	got := gotRun.lines

	// A refused token is refused the same way (401 at the upgrade).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, resp, err := websocket.Dial(ctx, tplRun.wsURL, nil); err == nil {
		c.CloseNow()
		t.Error("connected without a token")
	} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %v, %v; want 401", err, resp)
	}
	tplRun.stop(t)

	if !reflect.DeepEqual(got, want) {
		t.Errorf("through the template:\n  %s\nin-process demo:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	t.Logf("transcript:\n  %s", strings.Join(got, "\n  "))
	for _, e := range append(wantRun.errs, gotRun.errs...) {
		t.Error(e)
	}
	if len(want) < 10 {
		t.Errorf("transcript too short to mean anything: %q", want)
	}
	out := strings.Join(tplRun.stdout, "\n")
	if !strings.Contains(out, "not emulated: IAM roles") || !strings.Contains(out, "function StreamFunction: provided.al2023") {
		t.Errorf("start-up lines:\n%s", out)
	}
	logs := tplRun.stderr.String()
	for _, fn := range []string{"ConnectFunction", "StreamFunction", "DisconnectFunction"} {
		if !strings.Contains(logs, "local-"+fn+" | ") {
			t.Errorf("no prefixed output of %s in the runtime's log", fn)
		}
	}
	if strings.Contains(logs, tokens["alice"]) {
		t.Error("the token appears in the log")
	}
}
