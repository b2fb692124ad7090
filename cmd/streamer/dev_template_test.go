package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
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

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/streamer"
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
	o, err := parseDevFlags([]string{"--template", "t.yaml", "--parameter-overrides", "A=1 B=2", "--parameter-overrides", "C=3", "--function-concurrency", "2", "--no-watch"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := templateOptions{path: "t.yaml", overrides: []string{"A=1", "B=2", "C=3"}, concurrency: 2, stackName: "local", region: "us-east-1", noWatch: true}
	if !reflect.DeepEqual(o.tpl, want) {
		t.Fatalf("options %+v, want %+v", o.tpl, want)
	}
}

// transcript is a session's messages, normalised for comparing two
// runtimes: server request IDs become R1, R2... in order of appearance,
// consecutive progress messages of a request count as one, and the
// content of progress and results (which the two apps' report actions
// choose differently) is left out; everything else is kept.
type transcript struct {
	lines []string
	ids   map[string]string
}

func (tr *transcript) add(m serverMessage) {
	rid := m.RequestID
	if strings.HasPrefix(rid, "r-") {
		if tr.ids[rid] == "" {
			tr.ids[rid] = fmt.Sprintf("R%d", len(tr.ids)+1)
		}
		rid = tr.ids[rid]
	}
	line := string(m.Type) + " " + rid
	switch m.Type {
	case streamer.TypeResponse:
		line += " " + string(m.Data)
	case streamer.TypeError:
		line += " " + string(m.Code)
	case streamer.TypeProgress:
		if n := len(tr.lines); n > 0 && tr.lines[n-1] == line {
			return
		}
	}
	tr.lines = append(tr.lines, line)
}

// paritySession is the scenario both runtimes must answer alike: connect
// with a JWT, a sync echo, an async report through the stream processor
// to its complete, a disconnect, a reconnect as the same user that
// resumes the report, and a disconnect.
func paritySession(t *testing.T, wsURL, token string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr := &transcript{ids: map[string]string{}}
	auth := &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}}
	c := dialDev(ctx, t, wsURL, auth)
	c.send(ctx, `{"type":"request","id":"e1","action":"echo","payload":{"text":"hi"}}`)
	tr.add(c.read(ctx))
	c.send(ctx, `{"type":"request","id":"job-1","action":"report","payload":{"seconds":0.3}}`)
	var reportID string
	for {
		m := c.read(ctx)
		tr.add(m)
		if m.Type == streamer.TypeAck {
			reportID = m.RequestID
		}
		if m.Type == streamer.TypeComplete || m.Type == streamer.TypeError {
			break
		}
	}
	c.c.Close(websocket.StatusNormalClosure, "bye")

	c2 := dialDev(ctx, t, wsURL, auth)
	c2.send(ctx, `{"type":"resume","request_id":"`+reportID+`"}`)
	tr.add(c2.read(ctx))
	c2.send(ctx, `{"type":"resume","request_id":"r-unknown"}`)
	tr.add(c2.read(ctx))
	c2.send(ctx, `{"type":"ping"}`)
	tr.add(c2.read(ctx))
	c2.c.Close(websocket.StatusNormalClosure, "bye")
	return tr.lines
}

// TestTemplateParityWithTheDemo runs the deployed binary (examples/lambda)
// through `streamer dev --template deploy/template.json` with dynalite and
// the same scenario through the in-process `streamer dev`, both with RS256
// JWT auth: the client gets the same messages in the same order.
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
	token, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"sub": "alice", "tenant_id": "acme", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}

	demoRun := startDevProcess(t, bin, "--jwt-algorithms", "RS256", "--jwt-public-key", pemFile)
	want := paritySession(t, demoRun.wsURL, token)
	demoRun.stop(t)

	prefix := dynamotest.Prefix("tpl")
	tplRun := startDevProcess(t, bin, "--template", filepath.Join(dir, "template.json"), "--dynamodb-endpoint", endpoint, "--no-watch",
		"--parameter-overrides", "StageName=dev TablePrefix="+prefix+" JWTAlgorithms=RS256 JWTKeyFile="+pemFile)
	got := paritySession(t, tplRun.wsURL, token)

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
	if len(want) < 6 {
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
	if strings.Contains(logs, token) {
		t.Error("the token appears in the log")
	}
}
