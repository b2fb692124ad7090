package streamer_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// fastProgress makes tests independent of the default 10/s rate.
var fastProgress = streamer.WithProgressOptions(progress.WithRate(1000), progress.WithPersistInterval(0))

type countIn struct {
	Steps int `json:"steps"`
}

func countHandler(runs *atomic.Int32) streamer.AsyncHandler {
	return streamer.AsyncHandlerOf(func(ctx context.Context, req *streamer.Request, in countIn, p progress.Reporter) (any, error) {
		runs.Add(1)
		for i := 1; i <= in.Steps; i++ {
			if err := p.Report(float64(i*100/in.Steps), "step"); err != nil {
				return nil, err
			}
		}
		return map[string]any{"steps": in.Steps, "user": req.Identity.UserID}, nil
	})
}

func TestAsyncAckProgressComplete(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	p := e.processor(fastProgress)
	e.connect(t, "c1", "alice", "t1")

	ack := e.reply(t, "c1", `{"type":"request","id":"job-1","action":"count","payload":{"steps":5}}`)
	if ack.Type != "ack" || ack.ID != "job-1" || ack.RequestID == "" || ack.RequestID == "job-1" || ack.Action != "count" {
		t.Fatalf("ack = %+v", ack)
	}
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	ms := e.sent.messages("c1")[1:]
	last := ms[len(ms)-1]
	if last.Type != "complete" || last.RequestID != ack.RequestID {
		t.Fatalf("last message = %+v", last)
	}
	if string(last.Result) != `{"steps":5,"user":"alice"}` {
		t.Fatalf("result = %s", last.Result)
	}
	prev := -1.0
	for _, m := range ms[:len(ms)-1] {
		if m.Type != "progress" || m.RequestID != ack.RequestID || m.Percentage < prev {
			t.Fatalf("progress out of order or wrong: %+v", ms)
		}
		prev = m.Percentage
	}
	if prev != 100 {
		t.Fatalf("final progress %v, want 100 before complete: %+v", prev, ms)
	}
	stored, err := e.store.GetRequest(t.Context(), ack.RequestID)
	if err != nil || stored.Status != store.StatusCompleted || stored.UserID != "alice" || stored.TenantID != "t1" {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	// A duplicate delivery does not run the handler again.
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times", runs.Load())
	}
}

func TestAsyncPayloadIsCheckedBeforeQueueing(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	e.connect(t, "c1", "alice", "")
	w := e.reply(t, "c1", `{"type":"request","id":"j","action":"count","payload":{"steps":"many"}}`)
	if w.Code != "INVALID_MESSAGE" || w.RequestID != "j" {
		t.Fatalf("reply = %+v", w)
	}
	page, _, err := e.store.ListRequestsByUser(t.Context(), "alice", 0, "")
	if err != nil || len(page) != 0 {
		t.Fatalf("something was queued: %v %v", page, err)
	}
}

func TestResubmissionIsIdempotentPerUser(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	p := e.processor(fastProgress)
	e.connect(t, "a1", "alice", "")
	e.connect(t, "a2", "alice", "")
	e.connect(t, "b1", "bob", "")

	first := e.reply(t, "a1", `{"type":"request","id":"same","action":"count","payload":{"steps":1}}`)
	if err := p.Process(t.Context(), first.RequestID); err != nil {
		t.Fatal(err)
	}
	// Alice retries from a new connection after a reconnect: same id, no new run.
	e.send(t, "a2", `{"type":"request","id":"same","action":"count","payload":{"steps":1}}`)
	replies := e.sent.messages("a2")
	if len(replies) != 2 {
		t.Fatalf("resubmission of a finished request: %+v, want ack then complete", replies)
	}
	again, outcome := replies[0], replies[1]
	if again.Type != "ack" || again.RequestID != first.RequestID {
		t.Fatalf("resubmission ack = %+v, want request_id %s", again, first.RequestID)
	}
	if outcome.Type != "complete" || outcome.RequestID != first.RequestID || string(outcome.Result) != `{"steps":1,"user":"alice"}` {
		t.Fatalf("resubmission outcome = %+v", outcome)
	}
	if err := p.Process(t.Context(), again.RequestID); err != nil {
		t.Fatal(err)
	}
	// Bob's identical client id is a different request.
	other := e.reply(t, "b1", `{"type":"request","id":"same","action":"count","payload":{"steps":1}}`)
	if other.RequestID == first.RequestID {
		t.Fatal("two users share a request id")
	}
	if err := p.Process(t.Context(), other.RequestID); err != nil {
		t.Fatal(err)
	}
	if runs.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2 (alice once, bob once)", runs.Load())
	}
}

func TestConcurrentDuplicateDeliveriesRunOnce(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	p1 := e.processor(fastProgress)
	p2 := e.processor(fastProgress)
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"d","action":"count","payload":{"steps":3}}`)
	var wg sync.WaitGroup
	for _, p := range []*streamer.Processor{p1, p2, p1, p2} {
		wg.Go(func() {
			if err := p.Process(t.Context(), ack.RequestID); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("handler ran %d times", runs.Load())
	}
	n := 0
	for _, m := range e.sent.messages("c1") {
		if m.Type == "complete" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d complete messages", n)
	}
}

func TestRetryableFailuresAreRetriedThenSucceed(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	transient := errors.New("upstream 503")
	e.router.HandleAsyncFunc("flaky", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		if calls.Add(1) < 3 {
			return nil, streamer.Retryable(transient)
		}
		return "ok", nil
	})
	p := e.processor(streamer.WithRetryBackoff(time.Millisecond, 2*time.Millisecond), streamer.WithMaxAttempts(5))
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"f","action":"flaky"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if w := e.sent.last(t, "c1"); w.Type != "complete" || string(w.Result) != `"ok"` {
		t.Fatalf("last = %+v", w)
	}
	got, _ := e.store.GetRequest(t.Context(), ack.RequestID)
	if got.Attempts != 2 || calls.Load() != 3 {
		t.Fatalf("attempts %d, calls %d", got.Attempts, calls.Load())
	}
}

func TestRetriesStopAtTheLimit(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.router.HandleAsyncFunc("down", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		calls.Add(1)
		return nil, streamer.Retryable(errors.New("still down"))
	})
	p := e.processor(streamer.WithRetryBackoff(time.Millisecond, time.Millisecond), streamer.WithMaxAttempts(3))
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"f","action":"down"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	w := e.sent.last(t, "c1")
	if w.Type != "error" || w.Code != "INTERNAL" || w.RequestID != ack.RequestID {
		t.Fatalf("last = %+v", w)
	}
	got, _ := e.store.GetRequest(t.Context(), ack.RequestID)
	if got.Status != store.StatusFailed || calls.Load() != 3 {
		t.Fatalf("status %s after %d calls", got.Status, calls.Load())
	}
}

func TestAsyncFailuresArePersistedAndSent(t *testing.T) {
	e := newEnv(t)
	e.router.HandleAsyncFunc("panics", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		panic("kaboom with secrets")
	})
	e.router.HandleAsyncFunc("refuses", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return nil, streamer.NewClientError(protocol.CodeForbidden, "not your widget")
	})
	e.router.HandleAsyncFunc("plain", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		return nil, errors.New("connection refused to 10.0.0.7")
	})
	p := e.processor()
	e.connect(t, "c1", "alice", "")
	for action, want := range map[string]string{"panics": "INTERNAL", "refuses": "FORBIDDEN", "plain": "INTERNAL"} {
		ack := e.reply(t, "c1", `{"type":"request","id":"`+action+`","action":"`+action+`"}`)
		if err := p.Process(t.Context(), ack.RequestID); err != nil {
			t.Fatal(err)
		}
		w := e.sent.last(t, "c1")
		if w.Type != "error" || w.Code != want || w.RequestID != ack.RequestID {
			t.Errorf("%s: last = %+v", action, w)
		}
		got, _ := e.store.GetRequest(t.Context(), ack.RequestID)
		if got.Status != store.StatusFailed || got.Error == nil || got.Error.Code != want || got.Error.Message != w.Message {
			t.Errorf("%s: stored %+v", action, got)
		}
	}
}

// blockingHandler reports progress until its context ends.
func blockingHandler(started chan<- string, ended chan<- error) streamer.AsyncHandler {
	return streamer.AsyncHandlerFunc(func(ctx context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		started <- req.RequestID
		for i := 0; ; i++ {
			_ = p.Report(float64(i%100), "working")
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
				return nil, ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
}

func TestCancelStopsTheRunningHandler(t *testing.T) {
	e := newEnv(t)
	started, ended := make(chan string, 1), make(chan error, 1)
	e.router.HandleAsync("long", blockingHandler(started, ended))
	p := e.processor(fastProgress)
	e.connect(t, "c1", "alice", "")
	e.connect(t, "m1", "mallory", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"l","action":"long"}`)
	done := make(chan error, 1)
	go func() { done <- p.Process(t.Context(), ack.RequestID) }()
	<-started

	// Someone else's cancel is refused as if the request did not exist.
	if w := e.reply(t, "m1", `{"type":"cancel","request_id":"`+ack.RequestID+`"}`); w.Code != "NOT_FOUND" {
		t.Fatalf("foreign cancel: %+v", w)
	}
	if w := e.reply(t, "m1", `{"type":"resume","request_id":"`+ack.RequestID+`"}`); w.Code != "NOT_FOUND" {
		t.Fatalf("foreign resume: %+v", w)
	}
	e.send(t, "c1", `{"type":"cancel","request_id":"`+ack.RequestID+`"}`)
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("handler ended with %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.GetRequest(t.Context(), ack.RequestID)
	if got.Status != store.StatusCancelled {
		t.Fatalf("status %s", got.Status)
	}
	cancelled := 0
	for _, m := range e.sent.messages("c1") {
		if m.Type == "complete" {
			t.Fatalf("complete after cancel: %+v", m)
		}
		if m.Type == "error" && m.Code == "CANCELLED" && m.RequestID == ack.RequestID {
			cancelled++
		}
	}
	if cancelled != 1 {
		t.Fatalf("%d CANCELLED messages", cancelled)
	}
	// Cancelling again reports the final state.
	if w := e.reply(t, "c1", `{"type":"cancel","request_id":"`+ack.RequestID+`"}`); w.Code != "CANCELLED" {
		t.Fatalf("second cancel: %+v", w)
	}
}

func TestCancelIsNoticedByLeaseRenewalWithoutProgress(t *testing.T) {
	e := newEnv(t)
	started := make(chan string, 1)
	e.router.HandleAsyncFunc("quiet", func(ctx context.Context, req *streamer.Request, _ progress.Reporter) (any, error) {
		started <- req.RequestID
		<-ctx.Done()
		return nil, ctx.Err()
	})
	p := e.processor(streamer.WithLease(30 * time.Millisecond))
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"q","action":"quiet"}`)
	done := make(chan error, 1)
	go func() { done <- p.Process(t.Context(), ack.RequestID) }()
	<-started
	e.send(t, "c1", `{"type":"cancel","request_id":"`+ack.RequestID+`"}`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestResumeReportsCurrentState(t *testing.T) {
	e := newEnv(t)
	var runs atomic.Int32
	e.router.HandleAsync("count", countHandler(&runs))
	p := e.processor(fastProgress)
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"r","action":"count","payload":{"steps":2}}`)
	if w := e.reply(t, "c1", `{"type":"resume","request_id":"`+ack.RequestID+`"}`); w.Type != "progress" || w.Percentage != 0 {
		t.Fatalf("resume while queued: %+v", w)
	}
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	e.connect(t, "c2", "alice", "")
	if w := e.reply(t, "c2", `{"type":"resume","request_id":"`+ack.RequestID+`"}`); w.Type != "complete" || string(w.Result) != `{"steps":2,"user":"alice"}` {
		t.Fatalf("resume after completion: %+v", w)
	}
	if w := e.reply(t, "c2", `{"type":"resume","request_id":"r-nothing"}`); w.Code != "NOT_FOUND" {
		t.Fatalf("resume of unknown: %+v", w)
	}
}

func TestResultsFollowTheUser(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	started := make(chan struct{})
	e.router.HandleAsyncFunc("wait", func(ctx context.Context, _ *streamer.Request, p progress.Reporter) (any, error) {
		close(started)
		<-release
		_ = p.Report(100, "done")
		return "result", nil
	})
	p := e.processor(fastProgress)
	e.connect(t, "old", "alice", "t")
	e.connect(t, "phone", "alice", "t")
	e.connect(t, "bob", "bob", "t")
	e.connect(t, "other-tenant", "alice", "u")
	ack := e.reply(t, "old", `{"type":"request","id":"w","action":"wait"}`)
	done := make(chan error, 1)
	go func() { done <- p.Process(t.Context(), ack.RequestID) }()
	<-started
	e.sent.setGone("old")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.sent.waitFor(t, "phone", func(w wire) bool { return w.Type == "complete" && w.RequestID == ack.RequestID })
	for _, c := range []string{"bob", "other-tenant"} {
		if ms := e.sent.messages(c); len(ms) != 0 {
			t.Fatalf("%s received another user's messages: %+v", c, ms)
		}
	}
}

func TestExpiredLeaseIsReclaimed(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := memory.New(memory.WithClock(clock))
	rec := newRecorder()
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st), streamer.WithClock(clock))
	var runs atomic.Int32
	r.HandleAsync("count", countHandler(&runs))
	e := &env{store: st, sent: rec, router: r, clock: clock}
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"x","action":"count","payload":{"steps":1}}`)

	// A worker claims it and dies.
	if _, err := st.Claim(t.Context(), ack.RequestID, "dead-worker", time.Minute); err != nil {
		t.Fatal(err)
	}
	p := e.processor(fastProgress)
	if err := p.Process(t.Context(), ack.RequestID); err != nil || runs.Load() != 0 {
		t.Fatalf("ran under a live lease: runs=%d err=%v", runs.Load(), err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetRequest(t.Context(), ack.RequestID)
	if runs.Load() != 1 || got.Status != store.StatusCompleted || got.Attempts != 1 {
		t.Fatalf("runs=%d stored=%+v", runs.Load(), got)
	}
}

func TestQueuedActionMissingFromThisProcessFails(t *testing.T) {
	e := newEnv(t)
	e.router.HandleAsyncFunc("gone", func(context.Context, *streamer.Request, progress.Reporter) (any, error) { return nil, nil })
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"g","action":"gone"}`)
	// A processor whose registry lacks the action (another deploy).
	other := streamer.NewProcessor(e.store, e.sent, streamer.NewActions(), streamer.WithProcessorConnections(e.store))
	if err := other.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if w := e.sent.last(t, "c1"); w.Code != "UNKNOWN_ACTION" {
		t.Fatalf("last = %+v", w)
	}
}

func TestDecodeGivesTypedPayload(t *testing.T) {
	req := &streamer.Request{Action: "a", Payload: json.RawMessage(`{"steps":3}`)}
	v, err := streamer.Decode[countIn](req)
	if err != nil || v.Steps != 3 {
		t.Fatalf("Decode = %+v, %v", v, err)
	}
	req.Payload = json.RawMessage(`[]`)
	_, err = streamer.Decode[countIn](req)
	var ce *streamer.ClientError
	if !errors.As(err, &ce) || ce.Code != protocol.CodeInvalidMessage {
		t.Fatalf("Decode of wrong shape = %v", err)
	}
}

func TestRetriesAreBoundedByTheDeadline(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.router.HandleAsyncFunc("flaky", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		calls.Add(1)
		return nil, streamer.Retryable(errors.New("throttled"))
	})
	// A backoff that does not fit before the deadline: like a Lambda
	// invocation near its end, the request is left queued for the next
	// delivery instead of sleeping past the deadline. The jitter draws
	// the largest delay, an hour, so the outcome never depends on luck.
	p := e.processor(streamer.WithRetryBackoff(time.Hour, time.Hour), streamer.WithMaxAttempts(5),
		streamer.WithProcessorRand(func(n int64) int64 { return n - 1 }))
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"f","action":"flaky"}`)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := p.Process(ctx, ack.RequestID); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.GetRequest(t.Context(), ack.RequestID)
	if calls.Load() != 1 || got.Status != store.StatusPending || got.Attempts != 1 {
		t.Fatalf("calls %d, stored %+v", calls.Load(), got)
	}
	// Nothing final was sent: the request is still going.
	for _, m := range e.sent.messages("c1") {
		if m.Type == "error" || m.Type == "complete" {
			t.Fatalf("final message for a requeued request: %+v", m)
		}
	}
}

func TestAsyncTimeoutFailsWithTIMEOUT(t *testing.T) {
	e := newEnv(t)
	e.router.HandleAsyncFunc("slow", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, streamer.Timeout(20*time.Millisecond))
	p := e.processor()
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"s","action":"slow"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if w := e.sent.last(t, "c1"); w.Type != "error" || w.Code != "TIMEOUT" || w.RequestID != ack.RequestID {
		t.Fatalf("last = %+v", w)
	}
	if got, _ := e.store.GetRequest(t.Context(), ack.RequestID); got.Status != store.StatusFailed || got.Error.Code != "TIMEOUT" {
		t.Fatalf("stored %+v", got)
	}
}

// A handler that reports 100 % and succeeds just as the processor's
// context ends (a Lambda deadline, a shutdown) still has its final
// progress delivered before complete: the drain does not depend on that
// context.
func TestFinalProgressSurvivesTheContextEndingAtCompletion(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.router.HandleAsyncFunc("edge", func(_ context.Context, _ *streamer.Request, p progress.Reporter) (any, error) {
		_ = p.Report(50, "half")
		_ = p.Report(100, "done") // held back by the default rate of 10/s
		cancel()
		return "ok", nil
	})
	p := e.processor()
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"edge","action":"edge"}`)
	if err := p.Process(ctx, ack.RequestID); err != nil {
		t.Fatal(err)
	}
	ms := e.sent.messages("c1")[1:]
	if len(ms) < 2 {
		t.Fatalf("messages %+v", ms)
	}
	if last := ms[len(ms)-1]; last.Type != "complete" || string(last.Result) != `"ok"` {
		t.Fatalf("last %+v, want complete", last)
	}
	if prev := ms[len(ms)-2]; prev.Type != "progress" || prev.Percentage != 100 {
		t.Fatalf("before complete: %+v, want progress 100 (all: %+v)", prev, ms)
	}
}

// TestProcessorWithItsOwnDependencies: a processor built from a store, a
// sender and an action registry it shares with the router, without the
// router, runs what the router queued.
func TestProcessorWithItsOwnDependencies(t *testing.T) {
	st := memory.New()
	rec := newRecorder()
	actions := streamer.NewActions()
	actions.HandleAsyncFunc("work", func(_ context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		return "done for " + req.Identity.UserID, p.Report(100, "all")
	})
	r := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st), streamer.WithActions(actions))
	if r.Actions() != actions {
		t.Fatal("the router does not use the shared registry")
	}
	p := streamer.NewProcessor(st, rec, actions, streamer.WithProcessorConnections(st))
	e := &env{store: st, sent: rec, router: r}
	e.connect(t, "c1", "alice", "")
	ack := e.reply(t, "c1", `{"type":"request","id":"w","action":"work"}`)
	if err := p.Process(t.Context(), ack.RequestID); err != nil {
		t.Fatal(err)
	}
	if w := rec.last(t, "c1"); w.Type != "complete" || string(w.Result) != `"done for alice"` {
		t.Fatalf("last message %+v", w)
	}
}
