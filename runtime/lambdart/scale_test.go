package lambdart_test

import (
	"context"
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
