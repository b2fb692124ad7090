package stack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/stack"
)

const watchTemplate = `Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.12}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt Fn.Arn
  Default:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $default, Target: !Sub "integrations/${Integration}", RouteResponseSelectionExpression: $default}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: dev}
`

// TestCodeChangeIsPickedUp edits a running function's code: the
// next invocation answers with the new code, without restarting
// `streamer dev`.
func TestCodeChangeIsPickedUp(t *testing.T) {
	short(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(version string) {
		t.Helper()
		code := "def handler(event, context):\n    return {'statusCode': 200, 'body': '" + version + "'}\n"
		if err := os.WriteFile(filepath.Join(src, "app.py"), []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("v1")
	if err := os.WriteFile(filepath.Join(dir, "template.yaml"), []byte(watchTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	p, ask := startWatched(t, dir)
	write("v2-longer") // a different size, whatever the file system's time resolution
	awaitAnswer(t, ask, "v1", "v2-longer")
	p.stop(t)
}

// startWatched starts dir/template.yaml with Watch on and returns ask,
// which sends a message and returns the answer; the first must be v1.
func startWatched(t *testing.T, dir string) (*running, func() string) {
	t.Helper()
	p := start(t, stack.Config{Template: filepath.Join(dir, "template.yaml"), Watch: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c := dial(ctx, t, p.WebSocketURL(), nil)
	ask := func() string {
		t.Helper()
		c.send(ctx, `{"action":"anything"}`)
		return c.read(ctx)
	}
	if got := ask(); got != "v1" {
		t.Fatalf("first answer %q, want v1", got)
	}
	return p, ask
}

// awaitAnswer asks until the answer turns from old to new: the watcher
// polls every 500 ms. Any other answer, or old for 20 s, fails the test.
func awaitAnswer(t *testing.T, ask func() string, old, new string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = ask(); got == new {
			return
		}
		if got != old {
			t.Fatalf("answer %q", got)
		}
	}
	t.Fatalf("still %q after the code changed", got)
}
