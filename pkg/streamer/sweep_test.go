package streamer_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// manualClock is a clock the test moves, shared by the store (leases,
// timestamps) and the router (the sweep's pending grace).
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock { return &manualClock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// bothStores is a store that is both halves, as memory and dynamo are.
type bothStores interface {
	store.ConnectionStore
	store.RequestStore
}

// forEachClockedStore runs fn against the memory store and, with a test
// server, the DynamoDB store (dynalite), each on the given clock.
func forEachClockedStore(t *testing.T, fn func(t *testing.T, newStore func(now func() time.Time) bothStores)) {
	t.Run("memory", func(t *testing.T) {
		fn(t, func(now func() time.Time) bothStores { return memory.New(memory.WithClock(now)) })
	})
	t.Run("dynamodb", func(t *testing.T) {
		dynamotest.Endpoint(t)
		fn(t, func(now func() time.Time) bothStores { return dynamoStore(t, dynamo.WithClock(now)) })
	})
}

// clockedEnv is an env whose store and router share a manual clock.
func clockedEnv(t *testing.T, newStore func(now func() time.Time) bothStores) (*env, *manualClock, bothStores) {
	clock := newManualClock()
	st := newStore(clock.Now)
	rec := newRecorder()
	q := streamer.NewQueue(0)
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st), streamer.WithClock(clock.Now), streamer.WithQueue(q))
	e := &env{sent: rec, router: r, requests: st, conns: st, clock: clock.Now, queue: q}
	if err := st.Save(t.Context(), &store.Connection{
		ConnectionID: "c1", UserID: "alice", TenantID: "acme", Permissions: []string{"reports:run"},
		ConnectedAt: clock.Now(), TTL: clock.Now().Add(time.Hour).Unix(),
	}); err != nil {
		t.Fatal(err)
	}
	return e, clock, st
}

func status(t *testing.T, st store.RequestStore, id string) *store.AsyncRequest {
	t.Helper()
	ar, err := st.GetRequest(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ar
}

// A worker claims a request and dies without a word. No delivery will
// ever bring the request back; the sweep finds it once the lease expires
// and completes it, and a second sweep finds nothing.
func TestSweepCompletesARequestWhoseWorkerDied(t *testing.T) {
	forEachClockedStore(t, func(t *testing.T, newStore func(func() time.Time) bothStores) {
		e, clock, st := clockedEnv(t, newStore)
		var runs atomic.Int32
		e.router.HandleAsync("count", countHandler(&runs))
		ack := e.reply(t, "c1", `{"type":"request","id":"x","action":"count","payload":{"steps":2}}`)
		if _, err := st.Claim(t.Context(), ack.RequestID, "dead-worker", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		p := e.processor(fastProgress)

		clock.Advance(29 * time.Second)
		if n, err := p.Sweep(t.Context()); err != nil || n != 0 || runs.Load() != 0 {
			t.Fatalf("sweep under a live lease: ran %d (handler %d), err %v", n, runs.Load(), err)
		}
		clock.Advance(time.Second) // the lease ends now
		n, err := p.Sweep(t.Context())
		if err != nil || n != 1 {
			t.Fatalf("sweep after the lease: ran %d, err %v", n, err)
		}
		got := status(t, st, ack.RequestID)
		if runs.Load() != 1 || got.Status != store.StatusCompleted || got.Attempts != 1 || got.LeaseOwner != "" {
			t.Fatalf("runs %d, stored %+v", runs.Load(), got)
		}
		if w := e.sent.last(t, "c1"); w.Type != "complete" || w.RequestID != ack.RequestID || string(w.Result) != `{"steps":2,"user":"alice"}` {
			t.Fatalf("last message %+v", w)
		}
		if n, err := p.Sweep(t.Context()); err != nil || n != 0 || runs.Load() != 1 {
			t.Fatalf("second sweep: ran %d (handler %d), err %v", n, runs.Load(), err)
		}
	})
}

// A PENDING request counts as lost only after the pending grace, so a
// sweep never races the normal dispatch of a fresh request.
func TestSweepRunsPendingRequestsOnlyAfterTheGrace(t *testing.T) {
	forEachClockedStore(t, func(t *testing.T, newStore func(func() time.Time) bothStores) {
		e, clock, st := clockedEnv(t, newStore)
		var runs atomic.Int32
		e.router.HandleAsync("count", countHandler(&runs))
		// No pool is attached: nothing dispatches these.
		old := e.reply(t, "c1", `{"type":"request","id":"old","action":"count","payload":{"steps":1}}`)
		clock.Advance(90 * time.Second)
		fresh := e.reply(t, "c1", `{"type":"request","id":"fresh","action":"count","payload":{"steps":1}}`)
		p := e.processor(fastProgress, streamer.WithPendingGrace(time.Minute))
		if n, err := p.Sweep(t.Context()); err != nil || n != 1 {
			t.Fatalf("sweep: ran %d, err %v", n, err)
		}
		if got := status(t, st, old.RequestID); got.Status != store.StatusCompleted {
			t.Fatalf("old request %s", got.Status)
		}
		if got := status(t, st, fresh.RequestID); got.Status != store.StatusPending {
			t.Fatalf("fresh request %s, want it left to its dispatch", got.Status)
		}
		clock.Advance(time.Minute) // queued exactly one grace ago: not yet
		if n, err := p.Sweep(t.Context()); err != nil || n != 0 {
			t.Fatalf("sweep one grace later: ran %d, err %v", n, err)
		}
		clock.Advance(time.Second)
		if n, err := p.Sweep(t.Context()); err != nil || n != 1 || status(t, st, fresh.RequestID).Status != store.StatusCompleted {
			t.Fatalf("sweep past the grace: ran %d, err %v", n, err)
		}
	})
}

// Two sweepers (two processes, or a sweep and a stream delivery) find the
// same stalled requests: the claims decide, each request runs once, and
// losing a claim is not an error.
func TestConcurrentSweepsRunEachRequestOnce(t *testing.T) {
	forEachClockedStore(t, func(t *testing.T, newStore func(func() time.Time) bothStores) {
		e, clock, _ := clockedEnv(t, newStore)
		var runs atomic.Int32
		e.router.HandleAsync("count", countHandler(&runs))
		const n = 12
		for i := range n {
			e.reply(t, "c1", `{"type":"request","id":"`+string(rune('a'+i))+`","action":"count","payload":{"steps":1}}`)
		}
		clock.Advance(2 * time.Minute)
		procs := []*streamer.Processor{
			e.processor(fastProgress, streamer.WithWorkers(3)),
			e.processor(fastProgress, streamer.WithWorkers(3)),
		}
		var total atomic.Int32
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(func() {
				ran, err := p.Sweep(t.Context())
				if err != nil {
					t.Error(err)
				}
				total.Add(int32(ran))
			})
		}
		wg.Wait()
		if runs.Load() != n || total.Load() != n {
			t.Fatalf("handler ran %d times, sweeps report %d; want %d each", runs.Load(), total.Load(), n)
		}
		complete := 0
		for _, m := range e.sent.messages("c1") {
			if m.Type == "complete" {
				complete++
			}
		}
		if complete != n {
			t.Fatalf("%d complete messages, want %d", complete, n)
		}
	})
}

// The pool sweeps at Start (work a previous process left) and then
// periodically: a request that was never queued — written while no
// pool listened — is picked up without any message from its client.
func TestPoolSweepPicksUpRequestsNobodyQueued(t *testing.T) {
	forEachClockedStore(t, func(t *testing.T, newStore func(func() time.Time) bothStores) {
		e, clock, st := clockedEnv(t, newStore)
		var runs atomic.Int32
		e.router.HandleAsync("count", countHandler(&runs))
		left := e.reply(t, "c1", `{"type":"request","id":"left","action":"count","payload":{"steps":1}}`)
		clock.Advance(2 * time.Minute)

		p := e.processor(fastProgress, streamer.WithSweepInterval(20*time.Millisecond))
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := p.Shutdown(t.Context()); err != nil {
				t.Error(err)
			}
		}()
		e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "complete" && w.RequestID == left.RequestID })

		// Written straight to the store, as a router whose pool was full
		// or gone would have left it: only a sweep can find it.
		lost := &store.AsyncRequest{
			RequestID: "r-lost", ClientRequestID: "lost", ConnectionID: "c1", UserID: "alice", TenantID: "acme",
			Action: "count", Payload: json.RawMessage(`{"steps":1}`), TTL: clock.Now().Add(time.Hour).Unix(),
		}
		if err := st.Enqueue(t.Context(), lost); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute)
		e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "complete" && w.RequestID == "r-lost" })
		if got := status(t, st, "r-lost"); got.Status != store.StatusCompleted {
			t.Fatalf("stored %+v", got)
		}
		if runs.Load() != 2 {
			t.Fatalf("handler ran %d times, want 2", runs.Load())
		}
	})
}

// countingRequests counts ListStalled calls and can make them fail.
type countingRequests struct {
	store.RequestStore
	lists atomic.Int32
	fail  error
}

func (c *countingRequests) ListStalled(ctx context.Context, before time.Time, limit int, cursor string) ([]*store.AsyncRequest, string, error) {
	c.lists.Add(1)
	if c.fail != nil {
		return nil, "", c.fail
	}
	return c.RequestStore.ListStalled(ctx, before, limit, cursor)
}

func TestSweepIntervalZeroTurnsThePoolSweepOff(t *testing.T) {
	st := memory.New()
	reqs := &countingRequests{RequestStore: st}
	p := streamer.NewProcessor(reqs, newRecorder(), streamer.NewActions(), streamer.WithSweepInterval(0))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := reqs.lists.Load(); n != 0 {
		t.Fatalf("%d ListStalled calls with the sweep off", n)
	}

	// On, the pool sweeps at Start; Shutdown stops the loop (goleak in
	// TestMain checks that nothing is left running).
	on := streamer.NewProcessor(reqs, newRecorder(), streamer.NewActions(), streamer.WithSweepInterval(time.Hour))
	if err := on.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for reqs.lists.Load() == 0 {
		select {
		case <-deadline:
			t.Fatal("no sweep at Start")
		case <-time.After(time.Millisecond):
		}
	}
	if err := on.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestSweepReportsStoreFailuresAndHonoursItsContext(t *testing.T) {
	st := memory.New()
	broken := errors.New("table unreachable")
	reqs := &countingRequests{RequestStore: st, fail: broken}
	p := streamer.NewProcessor(reqs, newRecorder(), streamer.NewActions())
	if n, err := p.Sweep(t.Context()); n != 0 || !errors.Is(err, broken) {
		t.Fatalf("Sweep on a failing store = %d, %v", n, err)
	}
	reqs.fail = nil
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := p.Sweep(ctx); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep with a cancelled context = %d, %v", n, err)
	}
}

// Async handlers see the permissions the request was queued with, stored
// with the request, even after the connection is gone.
func TestAsyncHandlerSeesTheQueuedPermissions(t *testing.T) {
	forEachClockedStore(t, func(t *testing.T, newStore func(func() time.Time) bothStores) {
		e, _, st := clockedEnv(t, newStore)
		var seen []string
		e.router.HandleAsyncFunc("whoami", func(_ context.Context, req *streamer.Request, _ progress.Reporter) (any, error) {
			seen = slices.Clone(req.Identity.Permissions)
			return map[string]any{"permissions": req.Identity.Permissions, "can_run": req.Identity.HasPermission("reports:run")}, nil
		}, streamer.RequirePermissions("reports:run"))
		ack := e.reply(t, "c1", `{"type":"request","id":"w","action":"whoami"}`)
		if ack.Type != "ack" {
			t.Fatalf("reply %+v", ack)
		}
		if err := st.Delete(t.Context(), "c1"); err != nil { // the user left
			t.Fatal(err)
		}
		if err := e.processor().Process(t.Context(), ack.RequestID); err != nil {
			t.Fatal(err)
		}
		got := status(t, st, ack.RequestID)
		if !slices.Equal(seen, []string{"reports:run"}) || string(got.Result) != `{"can_run":true,"permissions":["reports:run"]}` {
			t.Fatalf("handler saw %q; stored %s", seen, got.Result)
		}
	})
}
