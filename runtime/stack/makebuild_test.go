package stack_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/stack"
)

// TestMakefileGoFunction runs testdata/makeapp: a Go provided.al2023
// function with BuildMethod makefile is built as `sam build` builds it,
// by its Makefile's build-EchoFunction target into ARTIFACTS_DIR, which
// becomes its code (the name the recipe's link flags give and the file it
// copies there are in each answer), and answers two WebSocket clients
// through the management API at https://{domainName}/{stage}. The source
// folder gets nothing from the build.
func TestMakefileGoFunction(t *testing.T) {
	short(t)
	p := startCorpus(t, stack.Config{Template: "testdata/makeapp/template.yaml", StackName: "make"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	a := dial(ctx, t, p.WebSocketURL(), nil)
	t.Logf("first $connect (make, go build, cold start) after %v", time.Since(start))
	b := dial(ctx, t, p.WebSocketURL(), nil)
	a.send(ctx, `{"say":"from a"}`)
	b.send(ctx, `{"say":"from b"}`)
	if got, want := a.read(ctx), `hello {"say":"from a"} (built by make)`; got != want {
		t.Errorf("a read %q, want %q", got, want)
	}
	if got, want := b.read(ctx), `hello {"say":"from b"} (built by make)`; got != want {
		t.Errorf("b read %q, want %q", got, want)
	}
	if _, err := os.Stat("testdata/makeapp/echo/bootstrap"); !os.IsNotExist(err) {
		t.Errorf("the build wrote into the source folder: %v", err)
	}
}

// TestMakefileMissingFailsStart checks that a function whose Makefile is
// missing stops the start with a BuildError naming it and its target,
// rather than running anything else.
func TestMakefileMissingFailsStart(t *testing.T) {
	dir := t.TempDir()
	tpl := `Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: nomake, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile}
    Properties: {CodeUri: fn/, Handler: bootstrap, Runtime: provided.al2023}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"}
  Default:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $default, Target: !Sub "integrations/${Integration}"}
`
	if err := os.MkdirAll(filepath.Join(dir, "fn"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fn", "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := startFails(t, dir, tpl)
	var be *stack.BuildError
	if !errors.As(err, &be) || be.Function != "Fn" || be.Target != "build-Fn" || !errors.Is(err, stack.ErrMakefileNotFound) {
		t.Fatalf("start: %v, want a BuildError for Fn, build-Fn, ErrMakefileNotFound", err)
	}
}

// writeTree writes name → content under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startFails writes the template tpl into dir and returns the error that
// stops its start; a start that succeeds fails the test.
func startFails(t *testing.T, dir, tpl string) error {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "template.yaml"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := stack.Start(ctx, stack.Config{Template: filepath.Join(dir, "template.yaml"), Notices: &syncBuffer{}})
	if err == nil {
		s.Shutdown(ctx)
		t.Fatal("the stack started")
	}
	return err
}

// TestMakefileRebuildsOnChange runs a Python function that its Makefile
// builds (any runtime may name BuildMethod makefile): the recipe writes
// the handler into ARTIFACTS_DIR from a template and a version file, and
// with Watch on, a change to the version file makes the next invocation
// run a fresh build.
func TestMakefileRebuildsOnChange(t *testing.T) {
	short(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	tpl := strings.Replace(watchTemplate, "    Type: AWS::Serverless::Function\n", "    Type: AWS::Serverless::Function\n    Metadata: {BuildMethod: makefile}\n", 1)
	files := map[string]string{
		"template.yaml":   tpl,
		"src/app.tmpl":    "def handler(event, context):\n    return {'statusCode': 200, 'body': 'VERSION'}\n",
		"src/Makefile":    "build-Fn:\n\tsed \"s/VERSION/$$(cat version.txt)/\" app.tmpl > \"$(ARTIFACTS_DIR)/app.py\"\n",
		"src/version.txt": "v1",
	}
	writeTree(t, dir, files)
	awaitRebuild(t, dir, "app.py")
}

// awaitRebuild starts the app in dir with Watch on, whose answer is the
// content of src/version.txt, v1, as its build makes it; changes that to
// v2-longer and waits for the answer to follow; and checks that the
// build wrote no built file into the source folder.
func awaitRebuild(t *testing.T, dir, built string) {
	t.Helper()
	_, ask := startWatched(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "src/version.txt"), []byte("v2-longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	awaitAnswer(t, ask, "v1", "v2-longer")
	if _, err := os.Stat(filepath.Join(dir, "src", built)); !os.IsNotExist(err) {
		t.Errorf("the build wrote %s into the source folder: %v", built, err)
	}
}
