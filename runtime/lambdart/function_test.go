package lambdart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

// testWait bounds each invocation so a broken runtime fails the test
// instead of hanging it; it is not a timing claim.
const testWait = 30 * time.Second

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

func newGoFunction(t *testing.T, mod func(*lambdart.Config)) (*lambdart.Function, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	cfg := lambdart.Config{
		Name:    "gofn",
		Command: []string{goBootstrap},
		Dir:     filepath.Dir(goBootstrap),
		Runtime: "provided.al2023",
		Handler: "bootstrap",
		Timeout: 10 * time.Second,
		Output:  out,
		Env:     []string{"PATH=" + os.Getenv("PATH"), "CUSTOM=from-template"},
	}
	if mod != nil {
		mod(&cfg)
	}
	f, err := lambdart.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, out
}

func invoke(t *testing.T, f *lambdart.Function, payload string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	return f.Invoke(ctx, []byte(payload))
}

func pid(t *testing.T, f *lambdart.Function) int {
	t.Helper()
	b, err := invoke(t, f, `{"op":"pid"}`)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatalf("pid answer %q", b)
	}
	return n
}

func TestInvokeAnswersAndReusesTheProcess(t *testing.T) {
	f, _ := newGoFunction(t, nil)
	b, err := invoke(t, f, `{"op":"echo","ms":7}`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil || got["op"] != "echo" || got["ms"] != float64(7) {
		t.Fatalf("answer %s (%v)", b, err)
	}
	first := pid(t, f)
	if second := pid(t, f); second != first {
		t.Fatalf("warm invocation ran in process %d, not %d", second, first)
	}
	if f.Processes() != 1 {
		t.Fatalf("%d processes, want 1", f.Processes())
	}
}

func TestEnvironment(t *testing.T) {
	f, _ := newGoFunction(t, func(c *lambdart.Config) { c.MemoryMB = 256; c.Region = "eu-west-1" })
	for name, want := range map[string]string{
		"CUSTOM":                          "from-template",
		"AWS_LAMBDA_FUNCTION_NAME":        "gofn",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_REGION":                      "eu-west-1",
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                filepath.Dir(goBootstrap),
		"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
	} {
		b, err := invoke(t, f, `{"op":"env","env":"`+name+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != strconv.Quote(want) {
			t.Errorf("%s = %s, want %q", name, b, want)
		}
	}
}

func TestOneInvocationPerProcessUpToConcurrency(t *testing.T) {
	f, _ := newGoFunction(t, func(c *lambdart.Config) { c.Concurrency = 2 })
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := invoke(t, f, `{"op":"sleep","ms":300}`)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Processes(); n != 2 {
		t.Fatalf("%d processes after 4 concurrent invocations with concurrency 2, want 2", n)
	}
}

func TestFunctionError(t *testing.T) {
	f, _ := newGoFunction(t, nil)
	before := pid(t, f)
	_, err := invoke(t, f, `{"op":"error"}`)
	var fe *lambdart.FunctionError
	if !errors.As(err, &fe) || fe.Message != "it failed" || fe.Type != "errorString" {
		t.Fatalf("err = %#v", err)
	}
	// A handled error keeps the process, as on Lambda.
	if after := pid(t, f); after != before {
		t.Fatalf("process changed after a function error: %d → %d", before, after)
	}
}

func TestTimeoutStopsTheProcess(t *testing.T) {
	f, _ := newGoFunction(t, func(c *lambdart.Config) { c.Timeout = time.Second })
	before := pid(t, f)
	_, err := invoke(t, f, `{"op":"hang"}`)
	if !errors.Is(err, lambdart.ErrTimeout) || !strings.Contains(err.Error(), "1.00 seconds") {
		t.Fatalf("err = %v", err)
	}
	if after := pid(t, f); after == before {
		t.Fatal("the invocation after a timeout ran in the timed-out process")
	}
}

func TestCrashRestarts(t *testing.T) {
	f, out := newGoFunction(t, nil)
	before := pid(t, f)
	_, err := invoke(t, f, `{"op":"crash"}`)
	if !errors.Is(err, lambdart.ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v", err)
	}
	if after := pid(t, f); after == before {
		t.Fatal("the invocation after a crash ran in the crashed process")
	}
	if !strings.Contains(out.String(), "gofn | about to crash\n") {
		t.Fatalf("output %q lacks the prefixed line", out.String())
	}
}

func TestGarbageOnTheRuntimeAPI(t *testing.T) {
	f, _ := newGoFunction(t, func(c *lambdart.Config) { c.Env = append(c.Env, "FAULT=garbage") })
	for range 2 {
		_, err := invoke(t, f, `{"op":"echo"}`)
		if !errors.Is(err, lambdart.ErrProtocol) {
			t.Fatalf("err = %v", err)
		}
	}
}

func TestInitFailure(t *testing.T) {
	f, out := newGoFunction(t, func(c *lambdart.Config) { c.Env = append(c.Env, "FAULT=init") })
	_, err := invoke(t, f, `{"op":"echo"}`)
	if !errors.Is(err, lambdart.ErrInit) {
		t.Fatalf("err = %v", err)
	}
	// A Go binary that panics before lambda.Start reports nothing on
	// /init/error; Lambda then shows the exit status.
	if !strings.Contains(err.Error(), "exit status 2") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out.String(), "gofn | panic: cannot start") {
		t.Fatalf("no prefixed output: %q", out.String())
	}
}

func TestOutputIsPrefixed(t *testing.T) {
	f, out := newGoFunction(t, nil)
	if _, err := invoke(t, f, `{"op":"log"}`); err != nil {
		t.Fatal(err)
	}
	f.Close() // flushes the output pipes
	s := out.String()
	if !strings.Contains(s, "gofn | hello from ") || !strings.Contains(s, "gofn | to stderr\n") {
		t.Fatalf("output %q", s)
	}
}

func TestCodeChangeRestarts(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "version.txt")
	if err := os.WriteFile(code, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	builds := make(chan struct{}, 10)
	f, _ := newGoFunction(t, func(c *lambdart.Config) {
		c.Watch = []string{dir}
		c.WatchInterval = 20 * time.Millisecond
		c.Build = func(context.Context) error { builds <- struct{}{}; return nil }
	})
	before := pid(t, f)
	if len(builds) != 1 {
		t.Fatalf("%d builds before the first process, want 1", len(builds))
	}
	if err := os.WriteFile(code, []byte("22"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The watcher polls; wait (bounded) for the idle process to stop.
	deadline := time.Now().Add(testWait)
	for f.Processes() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := pid(t, f); after == before {
		t.Fatal("the invocation after a code change ran in the old process")
	}
	if len(builds) != 2 {
		t.Fatalf("%d builds, want 2 (the change rebuilds)", len(builds))
	}
}

func TestCodeChangeRestartsWithoutBuild(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "handler.txt")
	if err := os.WriteFile(code, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := newGoFunction(t, func(c *lambdart.Config) {
		c.Watch = []string{dir}
		c.WatchInterval = 20 * time.Millisecond
	})
	before := pid(t, f)
	if err := os.WriteFile(code, []byte("22"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Invoke at once: while the old process may still be stopping.
	deadline := time.Now().Add(testWait)
	after := before
	for after == before && time.Now().Before(deadline) {
		after = pid(t, f)
		time.Sleep(10 * time.Millisecond)
	}
	if after == before {
		t.Fatal("the code change never reached a fresh process")
	}
}

func TestCloseFailsWaitingInvocations(t *testing.T) {
	f, _ := newGoFunction(t, nil)
	if _, err := invoke(t, f, `{"op":"echo"}`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := invoke(t, f, `{"op":"echo"}`); !errors.Is(err, lambdart.ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	f.Close()
}
