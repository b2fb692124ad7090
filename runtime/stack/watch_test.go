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
	p := start(t, stack.Config{Template: filepath.Join(dir, "template.yaml"), Watch: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dial(ctx, t, p.WebSocketURL(), nil)
	ask := func() string {
		t.Helper()
		c.send(ctx, `{"action":"anything"}`)
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := ask(); got != "v1" {
		t.Fatalf("first answer %q, want v1", got)
	}
	write("v2-longer") // a different size, whatever the file system's time resolution
	// The watcher polls every 500 ms; ask until the new code answers.
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = ask(); got == "v2-longer" {
			break
		}
		if got != "v1" {
			t.Fatalf("answer %q", got)
		}
	}
	if got != "v2-longer" {
		t.Fatalf("still %q after the code changed", got)
	}
	p.stop(t)
}
