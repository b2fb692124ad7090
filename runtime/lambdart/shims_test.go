package lambdart_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

func newShimFunction(t *testing.T, runtime, handler string) *lambdart.Function {
	t.Helper()
	bin := map[string]string{"nodejs20.x": "node", "python3.12": "python3"}[runtime]
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("%s not installed: %v", bin, err)
	}
	shims, err := lambdart.Shims(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	code, err := filepath.Abs(map[string]string{"nodejs20.x": "testdata/node", "python3.12": "testdata/python"}[runtime])
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := lambdart.Command(runtime, code, shims)
	if err != nil {
		t.Fatal(err)
	}
	f, err := lambdart.New(lambdart.Config{
		Name: "shim", Command: cmd, Dir: code, Handler: handler, Runtime: runtime,
		Timeout: 10 * time.Second, Env: []string{"PATH=" + os.Getenv("PATH")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func answer(t *testing.T, f *lambdart.Function, payload string) map[string]any {
	t.Helper()
	b, err := invoke(t, f, payload)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return m
}

func TestNodeShim(t *testing.T) {
	cjs := newShimFunction(t, "nodejs20.x", "app.handler")
	got := answer(t, cjs, `{"n":1}`)
	if got["name"] != "shim" || got["cjs"] != true || got["got"].(map[string]any)["n"] != float64(1) {
		t.Fatalf("cjs answer %v", got)
	}
	if got := answer(t, newShimFunction(t, "nodejs20.x", "esm.handler"), `{"n":2}`); got["esm"] != true || got["n"] != float64(2) {
		t.Fatalf("esm answer %v", got)
	}
	if got := answer(t, newShimFunction(t, "nodejs20.x", "app.cb"), `{"n":3}`); got["cb"] != float64(3) {
		t.Fatalf("callback answer %v", got)
	}
	_, err := invoke(t, newShimFunction(t, "nodejs20.x", "app.fails"), `{}`)
	var fe *lambdart.FunctionError
	if !errors.As(err, &fe) || fe.Type != "TypeError" || fe.Message != "bad input" {
		t.Fatalf("err = %v", err)
	}
	_, err = invoke(t, newShimFunction(t, "nodejs20.x", "missing.handler"), `{}`)
	if !errors.As(err, &fe) || !errors.Is(err, lambdart.ErrInit) || fe.Type != "Runtime.ImportModuleError" {
		t.Fatalf("err = %v", err)
	}
}

func TestPythonShim(t *testing.T) {
	got := answer(t, newShimFunction(t, "python3.12", "app.handler"), `{"n":4}`)
	if got["py"] != float64(4) || got["name"] != "shim" || got["left"] != true {
		t.Fatalf("answer %v", got)
	}
	_, err := invoke(t, newShimFunction(t, "python3.12", "app.fails"), `{}`)
	var fe *lambdart.FunctionError
	if !errors.As(err, &fe) || fe.Type != "ValueError" || fe.Message != "nope" {
		t.Fatalf("err = %v", err)
	}
	_, err = invoke(t, newShimFunction(t, "python3.12", "nomodule.handler"), `{}`)
	if !errors.Is(err, lambdart.ErrInit) {
		t.Fatalf("err = %v", err)
	}
}

// TestNodeShimLargeEvents: events and answers of a megabyte, with
// multi-byte characters, cross the Node.js shim's Runtime API client
// intact, one after another on the same process.
func TestNodeShimLargeEvents(t *testing.T) {
	f := newShimFunction(t, "nodejs20.x", "app.handler")
	for i := range 3 {
		text := strings.Repeat("é€😀 ", 1<<18/4) + strconv.Itoa(i)
		payload, _ := json.Marshal(map[string]string{"text": text})
		got := answer(t, f, string(payload))
		if echo, _ := got["got"].(map[string]any)["text"].(string); echo != text {
			t.Fatalf("invocation %d: the echo differs (%d bytes, want %d)", i, len(echo), len(text))
		}
	}
	if n := f.Processes(); n != 1 {
		t.Errorf("%d processes, want the one reused", n)
	}
}
