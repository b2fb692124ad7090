package lambdart_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/runtime/lambdart"
)

// waitFor polls cond until it holds or testWait passes; the bound keeps
// a broken pool from hanging the test and is not a timing claim.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, testWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPoolGrowsPastFourForSlowInvocations: concurrent slow invocations
// each get a process of their own up to Concurrency, above the old cap
// of 4.
func TestPoolGrowsPastFourForSlowInvocations(t *testing.T) {
	f, _ := newGoFunction(t, func(c *lambdart.Config) { c.Concurrency = 8; c.Timeout = time.Minute })
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Still running when the pool is checked; Close ends them.
			_, _ = f.Invoke(context.Background(), []byte(`{"op":"sleep","ms":40000}`))
		}()
	}
	waitFor(t, "8 processes", func() bool { return f.Processes() == 8 })
	time.Sleep(100 * time.Millisecond)
	if n := f.Processes(); n != 8 {
		t.Errorf("%d processes with concurrency 8", n)
	}
	f.Close()
	wg.Wait()
}

// TestIdleProcessesAreReaped: a process unused for IdleTimeout stops, as
// Lambda reclaims an idle environment, and the next invocation starts a
// fresh one; a negative IdleTimeout keeps it.
func TestIdleProcessesAreReaped(t *testing.T) {
	f, _ := newGoFunction(t, func(c *lambdart.Config) { c.IdleTimeout = 100 * time.Millisecond })
	first := pid(t, f)
	waitFor(t, "reaped", func() bool { return f.Processes() == 0 })
	if again := pid(t, f); again == first {
		t.Errorf("the invocation after the reap ran in the reaped process %d", first)
	}

	kept, _ := newGoFunction(t, func(c *lambdart.Config) { c.IdleTimeout = -1 })
	before := pid(t, kept)
	time.Sleep(300 * time.Millisecond)
	if after := pid(t, kept); after != before || kept.Processes() != 1 {
		t.Errorf("IdleTimeout -1: process %d then %d, %d running", before, after, kept.Processes())
	}
}

func TestDefaultConcurrencyFitsTheMachine(t *testing.T) {
	if lambdart.DefaultConcurrency < 4 || lambdart.DefaultConcurrency > 64 {
		t.Errorf("DefaultConcurrency %d outside 4..64", lambdart.DefaultConcurrency)
	}
}

// TestProactiveInitWarmsASecondProcess: with ProactiveInit, the first
// cold start brings a second process up with it, so one invocation leaves
// two warm processes, and both are reclaimed when idle like any other.
func TestProactiveInitWarmsASecondProcess(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("proactive init applies on machines with more than one CPU")
	}
	f, _ := newGoFunction(t, func(c *lambdart.Config) {
		c.ProactiveInit = true
		c.Concurrency = 4
		c.IdleTimeout = 300 * time.Millisecond
	})
	pid(t, f)
	if n := f.Processes(); n != 2 {
		t.Fatalf("%d processes after the first invocation, want 2 (the spare started with the first)", n)
	}
	// Two at once run side by side in the two processes, one of them
	// the spare; no third starts.
	pids := make(chan int, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := invoke(t, f, `{"op":"sleepPid","ms":200}`)
			if err != nil {
				t.Error(err)
				return
			}
			n, _ := strconv.Atoi(string(b))
			pids <- n
		}()
	}
	wg.Wait()
	close(pids)
	seen := map[int]bool{}
	for p := range pids {
		seen[p] = true
	}
	if len(seen) != 2 || f.Processes() != 2 {
		t.Errorf("two concurrent invocations ran in processes %v with %d running, want two distinct of 2", seen, f.Processes())
	}
	waitFor(t, "both reaped", func() bool { return f.Processes() == 0 })

	// Without it, or with a Concurrency of one, one invocation leaves
	// one process.
	plain, _ := newGoFunction(t, func(c *lambdart.Config) { c.Concurrency = 4 })
	pid(t, plain)
	if n := plain.Processes(); n != 1 {
		t.Errorf("%d processes without ProactiveInit, want 1", n)
	}
	one, _ := newGoFunction(t, func(c *lambdart.Config) { c.ProactiveInit = true; c.Concurrency = 1 })
	pid(t, one)
	if n := one.Processes(); n != 1 {
		t.Errorf("%d processes with Concurrency 1, want 1", n)
	}
}

// TestProactiveInitStopsAfterAFailedInit: a function whose init fails is
// started twice for its first invocation (the spare with it) and once for
// each after, until its code changes.
func TestProactiveInitStopsAfterAFailedInit(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("proactive init applies on machines with more than one CPU")
	}
	starts := filepath.Join(t.TempDir(), "starts")
	f, err := lambdart.New(lambdart.Config{
		Name:          "broken",
		Command:       []string{"sh", "-c", `echo start >> "$STARTS"; exit 3`},
		Dir:           t.TempDir(),
		Runtime:       "provided.al2023",
		Handler:       "bootstrap",
		Env:           []string{"PATH=" + os.Getenv("PATH"), "STARTS=" + starts},
		Concurrency:   4,
		ProactiveInit: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	count := func() int {
		b, _ := os.ReadFile(starts)
		return strings.Count(string(b), "start")
	}
	for i, want := range []int{2, 3, 4} {
		if _, err := invoke(t, f, `{}`); !errors.Is(err, lambdart.ErrInit) {
			t.Fatalf("invocation %d: %v, want ErrInit", i, err)
		}
		waitFor(t, "no process left", func() bool { return f.Processes() == 0 })
		if n := count(); n != want {
			t.Fatalf("after invocation %d: %d processes started, want %d", i, n, want)
		}
	}
}
