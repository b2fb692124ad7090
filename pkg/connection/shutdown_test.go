package connection_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/streamer-go/streamer/pkg/connection"
)

func TestShutdownWaitsForInFlightSend(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1", "c2")
	arrived, release := f.srv.Hold("c1")
	sent := make(chan error, 1)
	go func() { sent <- f.m.Send(context.Background(), "c1", "m") }()
	<-arrived

	shut := make(chan error, 1)
	go func() { shut <- f.m.Shutdown(context.Background()) }()
	// From Shutdown's start, new work is refused at once...
	waitFor(t, func() bool {
		return errors.Is(f.m.Send(context.Background(), "c2", "m"), connection.ErrShuttingDown)
	})
	deliveredBefore := len(f.srv.Received("c2"))
	if err := f.m.Send(context.Background(), "c2", "m"); !errors.Is(err, connection.ErrShuttingDown) {
		t.Errorf("Send during Shutdown: %v", err)
	}
	if err := f.m.Broadcast(context.Background(), []string{"c2"}, "m"); !errors.Is(err, connection.ErrShuttingDown) {
		t.Errorf("Broadcast during Shutdown: %v", err)
	}
	if f.m.IsActive(context.Background(), "c2") {
		t.Error("IsActive during Shutdown reported true")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a Send in flight", err)
	default:
	}
	// ...while the Send in flight finishes normally.
	release()
	if err := <-sent; err != nil {
		t.Errorf("in-flight Send: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if got := len(f.srv.Received("c2")); got != deliveredBefore {
		t.Errorf("refused work was delivered %d times", got-deliveredBefore)
	}
	// Shutdown again: safe, and still nil.
	if err := f.m.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestShutdownDeadlineCancelsSend(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	arrived, release := f.srv.Hold("c1")
	defer release()
	sent := make(chan error, 1)
	go func() { sent <- f.m.Send(context.Background(), "c1", "m") }()
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- f.m.Shutdown(ctx) }()
	waitFor(t, func() bool { return errors.Is(f.m.Send(context.Background(), "c1", "m"), connection.ErrShuttingDown) })
	cancel() // Shutdown's deadline
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	err := <-sent
	if !errors.Is(err, connection.ErrShuttingDown) || !errors.Is(err, context.Canceled) {
		t.Errorf("cut-off Send = %v, want ErrShuttingDown and context.Canceled", err)
	}
}

func TestShutdownDuringBroadcastNeverHangs(t *testing.T) {
	f := newFixture(t, connection.WithBroadcastWorkers(4))
	all := ids("c", 200)
	// One ID held in flight, another waiting for a retry far away.
	arrived, release := f.srv.Hold(all[3])
	defer release()
	f.srv.Script(all[0], 500, 500, 500, 500)
	errc := make(chan error, 1)
	go func() { errc <- f.m.Broadcast(context.Background(), all, "m") }()
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- f.m.Shutdown(ctx) }()
	waitFor(t, func() bool { return errors.Is(f.m.Send(context.Background(), "x", "m"), connection.ErrShuttingDown) })
	cancel()
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v", err)
	}
	err := <-errc
	var be *connection.BroadcastError
	if !errors.As(err, &be) {
		t.Fatalf("Broadcast = %v, want *BroadcastError", err)
	}
	if e := be.Failed[all[3]]; !errors.Is(e, connection.ErrShuttingDown) {
		t.Errorf("held ID: %v, want ErrShuttingDown", e)
	}
	checkCancelledBroadcast(t, all, be, f.srv.ReceivedBy(), 4)
}

func TestShutdownTwiceConcurrently(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1")
	if err := f.m.Send(context.Background(), "c1", "m"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Go(func() { errs <- f.m.Shutdown(context.Background()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	if err := f.m.Flush(context.Background()); err != nil {
		t.Errorf("Flush after Shutdown: %v", err)
	}
}

func TestShutdownWaitsForBackgroundLastPing(t *testing.T) {
	f := newFixture(t)
	blocking := &blockingStore{ConnectionStore: f.store, release: make(chan struct{}), entered: make(chan struct{})}
	m := connection.NewManager(blocking, f.srv.Client(), f.srv.URL, connection.WithClock(f.clock))
	f.connect(t, "c1")
	if err := m.Send(context.Background(), "c1", "m"); err != nil {
		t.Fatal(err)
	}
	<-blocking.entered // the LastPing write runs after Send returned
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a write pending = %v, want context.Canceled", err)
	}
	shut := make(chan error, 1)
	go func() { shut <- m.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the background write ended", err)
	default:
	}
	close(blocking.release)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if c, _ := f.store.Get(context.Background(), "c1"); c == nil || c.LastPing.IsZero() {
		t.Error("LastPing not written")
	}
}

// TestShutdownCutsABroadcastWaitingForARetry: one ID waits in the retry
// queue for a backoff that, on this manual clock, never ends. Shutdown's
// deadline must still end the Broadcast, reporting that ID as not sent
// with ErrShuttingDown, while every other ID was delivered once.
func TestShutdownCutsABroadcastWaitingForARetry(t *testing.T) {
	clock := newManualClock()
	f := newFixture(t, connection.WithClock(clock), connection.WithBroadcastWorkers(2))
	all := ids("w", 20)
	f.srv.Script(all[0], 500)
	errc := make(chan error, 1)
	go func() { errc <- f.m.Broadcast(context.Background(), all, "m") }()
	<-clock.after // all[0] is now waiting for its retry
	// Every other ID finished (delivered and its answer processed).
	waitFor(t, func() bool { return f.m.Stats().SendsTotal == uint64(len(all)-1) })

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a deadline already passed: cancel what is left at once
	if err := f.m.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	err := <-errc
	var be *connection.BroadcastError
	if !errors.As(err, &be) || len(be.Failed) != 1 {
		t.Fatalf("Broadcast = %v, want only %s failed", err, all[0])
	}
	if e := be.Failed[all[0]]; !errors.Is(e, connection.ErrShuttingDown) || !errors.Is(e, context.Canceled) {
		t.Errorf("waiting ID: %v, want ErrShuttingDown and context.Canceled", e)
	}
	if got := f.srv.Attempts(all[0]); got != 1 {
		t.Errorf("waiting ID attempted %d times, want 1", got)
	}
	checkCancelledBroadcast(t, all, be, f.srv.ReceivedBy(), 2)
}
