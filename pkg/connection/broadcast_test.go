package connection_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/streamer-go/streamer/pkg/connection"
)

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d=", prefix, i)
	}
	return out
}

func TestBroadcastDeliversEachDistinctIDOnce(t *testing.T) {
	f := newFixture(t)
	all := ids("c", 50)
	withDups := append(append([]string{}, all...), all[:20]...)
	withDups = append(withDups, all[5], all[5])
	if err := f.m.Broadcast(context.Background(), withDups, map[string]string{"hello": "all"}); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	for _, id := range all {
		got := f.srv.Received(id)
		if len(got) != 1 || string(got[0]) != `{"hello":"all"}` {
			t.Errorf("%s received %q", id, got)
		}
	}
	if got := f.srv.TotalAttempts(); got != len(all) {
		t.Errorf("%d requests for %d distinct IDs", got, len(all))
	}
	// Broadcast reads nothing from the store: these IDs were never saved.
	if s := f.m.Stats(); s.SendsTotal != 50 || s.BroadcastsTotal != 1 || s.SendFailuresTotal != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestBroadcastReportsEveryFailure(t *testing.T) {
	f := newFixture(t, connection.WithBroadcastWorkers(3))
	all := ids("c", 20)
	f.connect(t, all...)
	f.srv.Disconnect(all[0], all[1])         // gone
	f.srv.Script(all[2], 500, 500, 500, 500) // retries exhausted
	f.srv.Script(all[3], 429, 503)           // recovers on the 3rd attempt
	f.srv.Script(all[4], 403)                // forbidden, final
	err := f.m.Broadcast(context.Background(), append(all, ""), "m")

	var be *connection.BroadcastError
	if !errors.As(err, &be) || !errors.Is(err, connection.ErrBroadcastPartialFailure) {
		t.Fatalf("err = %v, want *BroadcastError", err)
	}
	if be.Total != 21 || len(be.Failed) != 5 {
		t.Fatalf("Total %d, Failed %v", be.Total, be.Failed)
	}
	var gone *types.GoneException
	for _, id := range all[:2] {
		if e := be.Failed[id]; !errors.Is(e, connection.ErrConnectionStale) || !errors.As(e, &gone) {
			t.Errorf("%s: %v, want ErrConnectionStale", id, e)
		}
		if f.exists(t, id) {
			t.Errorf("gone %s still stored", id)
		}
	}
	if got := f.srv.Attempts(all[2]); got != 4 || be.Failed[all[2]] == nil {
		t.Errorf("failing ID: %d attempts, err %v", got, be.Failed[all[2]])
	}
	if _, failed := be.Failed[all[3]]; failed || len(f.srv.Received(all[3])) != 1 {
		t.Errorf("recovering ID not delivered once: %v", be.Failed[all[3]])
	}
	var forbidden *types.ForbiddenException
	if !errors.As(be.Failed[all[4]], &forbidden) || f.srv.Attempts(all[4]) != 1 {
		t.Errorf("forbidden ID: %v after %d attempts", be.Failed[all[4]], f.srv.Attempts(all[4]))
	}
	if !errors.Is(be.Failed[""], connection.ErrConnectionNotFound) {
		t.Errorf("empty ID: %v", be.Failed[""])
	}
	for _, id := range all[5:] {
		if len(f.srv.Received(id)) != 1 {
			t.Errorf("%s not delivered", id)
		}
	}
}

func TestBroadcastHonoursBreakers(t *testing.T) {
	f := newFixture(t, oneAttempt, connection.WithBreaker(connection.BreakerSettings{Threshold: 2}))
	ctx := context.Background()
	f.srv.Script("bad", 500, 500)
	_ = f.m.Broadcast(ctx, []string{"bad", "good"}, "m")
	_ = f.m.Broadcast(ctx, []string{"bad", "good"}, "m")
	attempts := f.srv.Attempts("bad")
	err := f.m.Broadcast(ctx, []string{"bad", "good"}, "m")
	var be *connection.BroadcastError
	if !errors.As(err, &be) || !errors.Is(be.Failed["bad"], connection.ErrCircuitOpen) || len(be.Failed) != 1 {
		t.Fatalf("err = %v, want only bad failed with ErrCircuitOpen", err)
	}
	if got := f.srv.Attempts("bad"); got != attempts {
		t.Errorf("open breaker let %d requests through", got-attempts)
	}
	if got := len(f.srv.Received("good")); got != 3 {
		t.Errorf("good received %d, want 3", got)
	}
}

// TestBroadcastRetryDoesNotHoldAWorker uses one worker and a clock that
// only moves when the test says so: the retry of the failing ID waits for
// its backoff while the single worker delivers every other ID. A design
// that slept inside the worker would deliver nothing else until the
// clock moved.
func TestBroadcastRetryDoesNotHoldAWorker(t *testing.T) {
	clock := newManualClock()
	f := newFixture(t, connection.WithClock(clock), connection.WithBroadcastWorkers(1),
		connection.WithRand(func(n int64) int64 { return n - 1 }))
	all := ids("c", 30)
	f.srv.Script(all[0], 500, 500)
	errc := make(chan error, 1)
	go func() { errc <- f.m.Broadcast(context.Background(), all, "m") }()

	// The first retry is scheduled (100 ms)...
	if d := <-clock.after; d != 100*time.Millisecond {
		t.Fatalf("first retry delay %v, want 100ms", d)
	}
	// ...and while it waits, the only worker goes on with the other IDs.
	waitFor(t, func() bool { return len(f.srv.ReceivedBy()) == len(all)-1 })
	if got := f.srv.Attempts(all[0]); got != 1 {
		t.Fatalf("failing ID attempted %d times before its delay passed", got)
	}
	clock.Advance(100 * time.Millisecond)
	if d := <-clock.after; d != 200*time.Millisecond {
		t.Fatalf("second retry delay %v, want 200ms", d)
	}
	clock.Advance(200 * time.Millisecond)
	if err := <-errc; err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	if got := f.srv.Attempts(all[0]); got != 3 || len(f.srv.Received(all[0])) != 1 {
		t.Errorf("failing ID: %d attempts, %d deliveries", got, len(f.srv.Received(all[0])))
	}
}

// waitFor polls cond: it waits for an event in another goroutine, and
// fails only if the event never happens.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBroadcastCancelReportsUnsentIDs(t *testing.T) {
	f := newFixture(t, connection.WithBroadcastWorkers(2))
	all := ids("c", 100)
	// Both workers are held in flight when the context ends, so no ID
	// after all[11] can go out however late the cancel runs: a free
	// worker would keep sending until the scheduler saw the cancel.
	arrivedA, releaseA := f.srv.Hold(all[10])
	defer releaseA()
	arrivedB, releaseB := f.srv.Hold(all[11])
	defer releaseB()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.m.Broadcast(ctx, all, "m") }()
	<-arrivedA
	<-arrivedB
	cancel()
	err := <-errc
	var be *connection.BroadcastError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BroadcastError", err)
	}
	checkCancelledBroadcast(t, all, be, f.srv.ReceivedBy(), 2)
	for id, e := range be.Failed {
		if !errors.Is(e, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", id, e)
		}
	}
	for _, id := range all[10:] {
		if !errors.Is(be.Failed[id], context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled (%d failed)", id, be.Failed[id], len(be.Failed))
		}
	}
	if got := f.srv.ReceivedBy(); len(got) > 12 {
		t.Errorf("%d IDs delivered, want at most the 10 before the held ones and the 2 held", len(got))
	}
}

func TestBroadcastEmptyAndAllDuplicates(t *testing.T) {
	f := newFixture(t)
	if err := f.m.Broadcast(context.Background(), nil, "m"); err != nil {
		t.Errorf("empty Broadcast: %v", err)
	}
	if err := f.m.Broadcast(context.Background(), []string{"a", "a", "a"}, "m"); err != nil {
		t.Errorf("Broadcast: %v", err)
	}
	if got := len(f.srv.Received("a")); got != 1 {
		t.Errorf("a received %d", got)
	}
}

func TestBroadcastForgetsGoneBreakers(t *testing.T) {
	f := newFixture(t, oneAttempt)
	all := ids("g", 40)
	f.srv.Script(all[0], 500) // one ordinary failure: a tracked breaker
	_ = f.m.Broadcast(context.Background(), all, "m")
	if got := breakers(f.m).Closed; got != 1 {
		t.Fatalf("closed breakers = %d, want 1", got)
	}
	f.srv.Disconnect(all...)
	_ = f.m.Broadcast(context.Background(), all, "m")
	if got := breakers(f.m); got != (connection.BreakerCounts{}) {
		t.Errorf("breakers of gone connections remembered: %+v", got)
	}
}

// checkCancelledBroadcast checks the outcome of a Broadcast cut short:
// no ID delivered twice; every ID delivered or reported; and an ID both
// delivered and reported only if its attempt was in flight when the
// context ended (the gateway took it, the answer was lost), which at most
// one attempt per worker can be.
func checkCancelledBroadcast(t *testing.T, all []string, be *connection.BroadcastError, received map[string]int, workers int) {
	t.Helper()
	ambiguous := 0
	for _, id := range all {
		n := received[id]
		e, failed := be.Failed[id]
		switch {
		case n > 1:
			t.Errorf("%s delivered %d times", id, n)
		case n == 0 && !failed:
			t.Errorf("%s neither delivered nor reported", id)
		case n == 1 && failed:
			if !errors.Is(e, context.Canceled) {
				t.Errorf("%s delivered but reported %v", id, e)
			}
			ambiguous++
		}
	}
	if ambiguous > workers {
		t.Errorf("%d IDs delivered yet reported failed; at most %d attempts were in flight", ambiguous, workers)
	}
}
