package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// Stores is what a Factory returns. A nil field skips that half of the
// suite, for implementations of only one interface.
type Stores struct {
	Connections store.ConnectionStore
	Requests    store.RequestStore
}

// Factory returns empty stores isolated from those of every other call
// (subtests run in parallel), whose only clock is now: TTL expiry, leases
// and timestamps must all read it. Implementations that page internally
// should use a small page size so the suite crosses page boundaries. Use
// t.Cleanup to release resources.
type Factory func(t *testing.T, now func() time.Time) Stores

// Run runs the contract suite as subtests of t.
//
// The suite reads lists right after writing, so it assumes the backend's
// secondary indexes are read-your-writes consistent, as the in-memory store
// and dynalite are. Against Amazon DynamoDB itself, whose GSIs are
// eventually consistent, list assertions may flake.
func Run(t *testing.T, factory Factory) {
	t.Helper()
	if factory == nil {
		t.Fatal("storetest: nil factory")
	}
	t.Run("Connections", func(t *testing.T) {
		for _, tc := range connectionTests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				clock := newClock()
				s := factory(t, clock.Now)
				if s.Connections == nil {
					t.Skip("storetest: factory returned no ConnectionStore")
				}
				tc.run(t, &env{clock: clock, conns: s.Connections})
			})
		}
	})
	t.Run("Requests", func(t *testing.T) {
		for _, tc := range requestTests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				clock := newClock()
				s := factory(t, clock.Now)
				if s.Requests == nil {
					t.Skip("storetest: factory returned no RequestStore")
				}
				tc.run(t, &env{clock: clock, reqs: s.Requests})
			})
		}
	})
}

type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// env is one test's view of the store under test.
type env struct {
	clock *clock
	conns store.ConnectionStore
	reqs  store.RequestStore
}

// clock is a manual clock. It starts at the current wall time (whole
// seconds) so that TTLs written to a real DynamoDB are not already in the
// past, where its TTL sweeper would delete items under the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// wantErr fails t unless err matches target (nil meaning success).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func cancelledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
