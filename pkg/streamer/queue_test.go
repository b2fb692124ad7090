package streamer_test

import (
	"sync/atomic"
	"testing"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// The Queue is all a Router and a Processor share: while no started
// Processor works from it the Router only stores requests (as on Lambda);
// from Start the Router hands it each request it stores; after Shutdown it
// only stores again.
func TestQueueFeedsOnlyAStartedProcessor(t *testing.T) {
	q := streamer.NewQueue(4)
	if q.Cap() != 4 || q.Len() != 0 {
		t.Fatalf("NewQueue(4): len %d cap %d", q.Len(), q.Cap())
	}
	if streamer.NewQueue(0).Cap() != streamer.DefaultQueueSize {
		t.Fatal("NewQueue(0) is not DefaultQueueSize")
	}
	e := newEnvQueue(t, q)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	e.connect(t, "c1", "alice", "")

	before := e.reply(t, "c1", `{"type":"request","id":"before","action":"count","payload":{"steps":1}}`)
	if before.Type != "ack" || q.Len() != 0 {
		t.Fatalf("before Start: reply %+v, queue length %d; want an ack and nothing queued", before, q.Len())
	}

	p := e.processor(fastProgress, streamer.WithSweepInterval(0))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	during := e.reply(t, "c1", `{"type":"request","id":"during","action":"count","payload":{"steps":1}}`)
	e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "complete" && w.RequestID == during.RequestID })
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}

	after := e.reply(t, "c1", `{"type":"request","id":"after","action":"count","payload":{"steps":1}}`)
	if after.Type != "ack" || q.Len() != 0 {
		t.Fatalf("after Shutdown: reply %+v, queue length %d; want an ack and nothing queued", after, q.Len())
	}
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times, want once (only the request stored while the pool ran)", runs.Load())
	}
	for _, id := range []string{before.RequestID, after.RequestID} {
		if got, _ := e.store.GetRequest(t.Context(), id); got.Status != store.StatusPending {
			t.Errorf("%s is %s, want PENDING for a sweep", id, got.Status)
		}
	}
}

// A Processor given no Queue works from one of its own, which no Router
// fills: the Router of the same store feeds nothing to it.
func TestProcessorWithoutTheRoutersQueueIsNotFed(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	p := streamer.NewProcessor(e.store, e.sent, e.router.Actions(), streamer.WithSweepInterval(0))
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"x","action":"count","payload":{"steps":1}}`)
	if st := p.Stats(); st.QueueDepth != 0 || st.QueueCapacity != streamer.DefaultQueueSize {
		t.Fatalf("stats %+v: want an empty queue of its own", st)
	}
	if got, _ := e.store.GetRequest(t.Context(), ack.RequestID); got.Status != store.StatusPending || runs.Load() != 0 {
		t.Fatalf("request %s, runs %d: want PENDING, not run", got.Status, runs.Load())
	}
	// Process still runs it, as a stream delivery would.
	if err := p.Process(t.Context(), ack.RequestID); err != nil || runs.Load() != 1 {
		t.Fatalf("Process: %v, runs %d", err, runs.Load())
	}
}

// Two processors may work from one Queue; one shutting down leaves the
// other fed.
func TestQueueSharedByTwoProcessors(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	a, b := e.processor(fastProgress, streamer.WithSweepInterval(0)), e.processor(fastProgress, streamer.WithSweepInterval(0))
	for _, p := range []*streamer.Processor{a, b} {
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	defer b.Shutdown(t.Context())
	if err := a.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"x","action":"count","payload":{"steps":1}}`)
	e.sent.waitFor(t, "c1", func(w wire) bool { return w.Type == "complete" && w.RequestID == ack.RequestID })
	if runs.Load() != 1 {
		t.Fatalf("runs = %d", runs.Load())
	}
}
