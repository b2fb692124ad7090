package streamer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestPoolRunsQueuedRequests(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	p := e.processor(fastProgress, streamer.WithWorkers(4))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.connect(t, "c1", "alice", "")
	ids := map[string]bool{}
	for i := range 20 {
		cid := "n" + string(rune('a'+i))
		e.send(t, "c1", `{"type":"request","id":"`+cid+`","action":"count","payload":{"steps":4}}`)
		ack := e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "ack" && w.ID == cid })
		ids[ack.RequestID] = true
	}
	for id := range ids {
		e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "complete" && w.RequestID == id })
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if runs.Load() != 20 {
		t.Fatalf("runs = %d", runs.Load())
	}
	if err := p.Start(t.Context()); !errors.Is(err, streamer.ErrProcessorClosed) {
		t.Fatalf("Start after Shutdown = %v", err)
	}
}

func TestFullQueueRefusesWithRateLimitedAndStoresNothing(t *testing.T) {
	e := newEnvQueue(t, streamer.NewQueue(1))
	started, ended := make(chan string, 10), make(chan error, 10)
	// Quiet: no progress messages, so each reply is the only message.
	e.router.HandleAsyncFunc("long", func(ctx context.Context, req *streamer.Request, _ progress.Reporter) (any, error) {
		started <- req.RequestID
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	})
	p := e.processor(streamer.WithWorkers(1))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.connect(t, "c1", "alice", "")
	first := e.reply(t, "c1", `{"type":"request","id":"1","action":"long"}`)
	<-started // the worker is busy; the queue is empty again
	second := e.reply(t, "c1", `{"type":"request","id":"2","action":"long"}`)
	third := e.reply(t, "c1", `{"type":"request","id":"3","action":"long"}`)
	if first.Type != "ack" || second.Type != "ack" || third.Code != "RATE_LIMITED" || third.RequestID != "3" {
		t.Fatalf("replies: %+v %+v %+v", first, second, third)
	}
	page, _, _ := e.store.ListRequestsByUser(t.Context(), "alice", 0, "")
	if len(page) != 2 {
		t.Fatalf("%d requests stored, want 2", len(page))
	}

	// Shutdown with an expired deadline cancels the running handler and
	// puts its request back in the queue.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("handler ended with %v", err)
	}
	got, _ := e.store.GetRequest(t.Context(), first.RequestID)
	if got.Status != store.StatusPending {
		t.Fatalf("interrupted request is %s, want PENDING", got.Status)
	}
	// After Shutdown the router no longer feeds the pool: requests are
	// queued in the store for another worker.
	if w := e.reply(t, "c1", `{"type":"request","id":"4","action":"long"}`); w.Type != "ack" {
		t.Fatalf("after shutdown: %+v", w)
	}
}

func TestShutdownWaitsForRunningHandler(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	started := make(chan struct{})
	var finished atomic.Bool
	e.router.HandleAsyncFunc("wait", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		close(started)
		<-release
		finished.Store(true)
		return "ok", nil
	})
	p := e.processor(streamer.WithWorkers(2))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"1","action":"wait"}`)
	<-started
	done := make(chan error, 2)
	go func() { done <- p.Shutdown(t.Context()) }()
	go func() { done <- p.Shutdown(t.Context()) }()
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if !finished.Load() {
		t.Fatal("Shutdown returned before the handler finished")
	}
	got, _ := e.store.GetRequest(t.Context(), ack.RequestID)
	if got.Status != store.StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
}

func TestResumeRedispatchesARequestNoWorkerHas(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	e.connect(t, "c1", "alice", "")
	// Queued while no pool was attached (a process restarted, say): it
	// sits PENDING with nobody to run it.
	ack := e.reply(t, "c1", `{"type":"request","id":"lost","action":"count","payload":{"steps":2}}`)
	p := e.processor(fastProgress)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	if runs.Load() != 0 {
		t.Fatal("ran without a dispatch")
	}
	e.send(t, "c1", `{"type":"resume","request_id":"`+ack.RequestID+`"}`)
	e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "complete" && w.RequestID == ack.RequestID })
	if runs.Load() != 1 {
		t.Fatalf("runs = %d", runs.Load())
	}
}

// TestShutdownCutRunDrainsNoProgress: a run cut at Shutdown's deadline
// ends without an outcome and its next attempt starts over, so its
// pending progress is dropped, not sent or stored while the shutdown's
// time runs out.
func TestShutdownCutRunDrainsNoProgress(t *testing.T) {
	e := newEnv(t)
	firstSent, reported := make(chan struct{}), make(chan struct{})
	e.router.HandleAsyncFunc("slow", func(ctx context.Context, _ *streamer.Request, p progress.Reporter) (any, error) {
		_ = p.Report(10, "first") // sent at once
		<-firstSent
		_ = p.Report(50, "second") // held back by the rate limit
		close(reported)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	p := e.processor(streamer.WithProgressOptions(progress.WithRate(0.001), progress.WithPersistInterval(time.Hour)), streamer.WithSweepInterval(0))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"s","action":"slow"}`)
	e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "progress" && w.Percentage == 10 })
	close(firstSent)
	<-reported
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the deadline has passed
	if err := p.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v", err)
	}
	for _, w := range e.sent.messages("c1") {
		if w.Type == "progress" && w.Percentage == 50 {
			t.Errorf("the cut run's pending progress was sent: %+v", w)
		}
	}
	got, _ := e.store.GetRequest(t.Context(), ack.RequestID)
	if got.Status != store.StatusPending || got.Progress == 50 {
		t.Errorf("stored %s at %g %%, want PENDING without the cut run's pending progress", got.Status, got.Progress)
	}
}
