package lambdart_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

// hostVersion asks an interpreter on PATH its version ("20.20.2").
func hostVersion(t *testing.T, bin string, args ...string) (string, string) {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Skipf("%s not installed: %v", bin, err)
	}
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		t.Skipf("%s does not run: %v", bin, err)
	}
	return path, strings.TrimSpace(string(out))
}

// TestRuntimesPickTheNamedVersion: the runtime a function names runs on
// that version when the machine has it (PATH or Paths); otherwise the
// host's interpreter runs it and one note names the substitution.
func TestRuntimesPickTheNamedVersion(t *testing.T) {
	_, nodeVer := hostVersion(t, "node", "-p", "process.versions.node")
	major := strings.Split(nodeVer, ".")[0]
	ctx := context.Background()
	shims := t.TempDir()

	var r lambdart.Runtimes
	l, err := r.Launch(ctx, "fn", "nodejs"+major+".x", "/code", shims)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Notes) != 0 || !strings.HasSuffix(l.Command[1], "node.mjs") {
		t.Errorf("nodejs%s.x on node %s: %+v", major, nodeVer, l)
	}
	l, err = r.Launch(ctx, "fn", "nodejs99.x", "/code", shims)
	if err != nil {
		t.Fatal(err)
	}
	want := "function fn names nodejs99.x; it runs on " + l.Command[0] + " " + nodeVer + " (no node99 on PATH; give one with --runtime nodejs99.x=/path/to/node)"
	if len(l.Notes) != 1 || l.Notes[0] != want {
		t.Errorf("notes %q, want %q", l.Notes, want)
	}

	// An interpreter found on PATH under the runtime's own name wins.
	dir := t.TempDir()
	node, _ := exec.LookPath("node")
	if err := os.Symlink(node, filepath.Join(dir, "node99")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	r = lambdart.Runtimes{}
	if l, err = r.Launch(ctx, "fn", "nodejs"+major+".x", "/code", shims); err != nil || len(l.Notes) != 0 {
		t.Errorf("nodejs%s.x: %+v %v", major, l, err)
	}

	// --runtime: the path given is used, and a version that does not
	// match is said.
	r = lambdart.Runtimes{Paths: map[string]string{"nodejs98.x": node}}
	l, err = r.Launch(ctx, "fn", "nodejs98.x", "/code", shims)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Notes) != 1 || !strings.Contains(l.Notes[0], "given for it") {
		t.Errorf("notes %q", l.Notes)
	}
	r = lambdart.Runtimes{Paths: map[string]string{"nodejs98.x": filepath.Join(dir, "missing")}}
	if _, err := r.Launch(ctx, "fn", "nodejs98.x", "/code", shims); !errors.Is(err, lambdart.ErrUnsupportedRuntime) {
		t.Errorf("a --runtime path that does not run: err = %v", err)
	}
}

// TestPythonRuntimeAndBoto3: python3.N runs on a Python 3.N when there
// is one, and the note says when boto3 (which Lambda bundles) is not
// importable.
func TestPythonRuntimeAndBoto3(t *testing.T) {
	_, ver := hostVersion(t, "python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])")
	_, hasBoto := hostVersion(t, "python3", "-c", "import importlib.util as u; print(u.find_spec('boto3') is not None)")
	var r lambdart.Runtimes
	l, err := r.Launch(context.Background(), "py", "python"+ver, "/code", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if hasBoto == "True" && len(l.Notes) != 0 {
		t.Errorf("python%s with boto3: notes %q", ver, l.Notes)
	}
	if hasBoto != "True" && (len(l.Notes) != 1 || !strings.Contains(l.Notes[0], "boto3")) {
		t.Errorf("python%s without boto3: notes %q", ver, l.Notes)
	}
	l, err = r.Launch(context.Background(), "py", "python3.99", "/code", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Notes) == 0 || !strings.HasPrefix(l.Notes[0], "function py names python3.99; it runs on ") || !strings.Contains(l.Notes[0], "no python3.99 on PATH") {
		t.Errorf("notes %q", l.Notes)
	}
}

// launchFunction runs testdata/<dir> on runtime through Runtimes.
func launchFunction(t *testing.T, r *lambdart.Runtimes, runtime, dir, handler string) *lambdart.Function {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skipf("node not installed: %v", err)
	}
	shims, err := lambdart.Shims(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, err := filepath.Abs(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.Launch(context.Background(), "fn", runtime, code, shims)
	if err != nil {
		t.Fatal(err)
	}
	f, err := lambdart.New(lambdart.Config{
		Name: "fn", Command: l.Command, Dir: code, Handler: handler, Runtime: runtime,
		Timeout: 10 * time.Second, Env: append([]string{"PATH=" + os.Getenv("PATH")}, l.Env...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestNode24RefusesCallbackHandlers: nodejs24.x fails a handler that
// declares a callback at init with Runtime.CallbackHandlerDeprecated, as
// Lambda does; nodejs22.x runs it.
func TestNode24RefusesCallbackHandlers(t *testing.T) {
	var r lambdart.Runtimes
	_, err := invoke(t, launchFunction(t, &r, "nodejs24.x", "node", "app.cb"), `{"n":1}`)
	var fe *lambdart.FunctionError
	if !errors.As(err, &fe) || fe.Type != "Runtime.CallbackHandlerDeprecated" || !fe.Init || !strings.Contains(fe.Message, "app.cb declares 3 parameters") {
		t.Fatalf("nodejs24.x callback handler: err = %#v", err)
	}
	if got := answer(t, launchFunction(t, &r, "nodejs24.x", "node", "app.handler"), `{}`); got["name"] != "fn" {
		t.Errorf("nodejs24.x async handler: %v", got)
	}
	if got := answer(t, launchFunction(t, &r, "nodejs22.x", "node", "app.cb"), `{"n":2}`); got["cb"] != float64(2) {
		t.Errorf("nodejs22.x callback handler: %v", got)
	}
}

// TestNodeSDKBundled: a handler that ships no SDK imports it (ES module)
// or requires it (CommonJS) from Runtimes.NodeSDK, as from the SDK
// Lambda's runtimes bundle; without NodeSDK the import fails at init.
func TestNodeSDKBundled(t *testing.T) {
	sdk, err := filepath.Abs("../../cmd/streamer/testdata/chat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sdk, "node_modules", "@aws-sdk", "client-dynamodb")); err != nil {
		t.Skipf("the chat app's node_modules are not installed: %v", err)
	}
	r := &lambdart.Runtimes{NodeSDK: sdk}
	if got := answer(t, launchFunction(t, r, "nodejs22.x", "nosdk", "esm.handler"), `{}`); got["sdk"] != "function" {
		t.Errorf("ES module: %v", got)
	}
	if got := answer(t, launchFunction(t, r, "nodejs22.x", "nosdk", "cjs.handler"), `{}`); got["sdk"] != "function" {
		t.Errorf("CommonJS: %v", got)
	}
	_, err = invoke(t, launchFunction(t, &lambdart.Runtimes{}, "nodejs22.x", "nosdk", "esm.handler"), `{}`)
	var fe *lambdart.FunctionError
	if !errors.As(err, &fe) || !fe.Init {
		t.Errorf("without the SDK: err = %v, want an init error", err)
	}
}

// TestNodeSDKFilledOnce: a cache NodeSDK filled before is used as is,
// with no npm run.
func TestNodeSDKFilledOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".complete"), []byte(strings.Join(lambdart.NodeSDKPackages, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir()) // no npm to run
	var progress strings.Builder
	if err := lambdart.NodeSDK(context.Background(), dir, &progress); err != nil || progress.Len() != 0 {
		t.Errorf("filled cache: err %v, progress %q", err, progress.String())
	}
	if err := lambdart.NodeSDK(context.Background(), t.TempDir(), &progress); !errors.Is(err, lambdart.ErrNoSDK) {
		t.Errorf("empty cache and no npm: err = %v", err)
	}
}
