package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type sweepStore interface {
	store.ConnectionStore
	store.RequestStore
}

// sweepFixture queues two requests the way the $default function does and
// loses both: the stream record of one never arrives, the worker of the
// other dies holding its lease. Both are past the processor's defaults
// (pending grace, lease) on the returned clock.
// sweepProcessor is the processor a scheduled sweep Lambda builds for
// sweepFixture's router.
func sweepProcessor(st sweepStore, rec *connectiontest.Recorder, router *streamer.Router, clock *testClock) *streamer.Processor {
	return streamer.NewProcessor(st, rec, router.Actions(), streamer.WithProcessorConnections(st), streamer.WithProcessorClock(clock.Now))
}

func sweepFixture(t *testing.T, st sweepStore, clock *testClock) (*streamer.Router, *connectiontest.Recorder, *atomic.Int32, []string) {
	t.Helper()
	rec := &connectiontest.Recorder{}
	router := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st), streamer.WithClock(clock.Now))
	runs := &atomic.Int32{}
	router.HandleAsyncFunc("work", func(_ context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		runs.Add(1)
		_ = p.Report(100, "done")
		return map[string]any{"user": req.Identity.UserID, "perms": req.Identity.Permissions}, nil
	}, streamer.RequirePermissions("work"))
	if err := st.Save(t.Context(), &store.Connection{ConnectionID: "c1", UserID: "alice", Permissions: []string{"work"}, TTL: clock.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, id := range []string{"lost-record", "dead-worker"} {
		if err := router.HandleMessage(t.Context(), streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"request","id":"` + id + `","action":"work"}`)}); err != nil {
			t.Fatal(err)
		}
		var ack struct {
			Type      string `json:"type"`
			RequestID string `json:"request_id"`
		}
		sent := rec.Sent()
		if err := json.Unmarshal(sent[len(sent)-1].Data, &ack); err != nil || ack.Type != "ack" {
			t.Fatalf("reply %s", sent[len(sent)-1].Data)
		}
		ids = append(ids, ack.RequestID)
	}
	if _, err := st.Claim(t.Context(), ids[1], "timed-out-lambda", streamer.DefaultLease); err != nil {
		t.Fatal(err)
	}
	clock.Advance(streamer.DefaultPendingGrace + streamer.DefaultLease + time.Second)
	return router, rec, runs, ids
}

func checkSwept(t *testing.T, st sweepStore, rec *connectiontest.Recorder, runs *atomic.Int32, ids []string) {
	t.Helper()
	if runs.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2", runs.Load())
	}
	for _, id := range ids {
		got, err := st.GetRequest(t.Context(), id)
		if err != nil || got.Status != store.StatusCompleted || string(got.Result) != `{"perms":["work"],"user":"alice"}` {
			t.Fatalf("%s: stored %+v, %v", id, got, err)
		}
	}
	completes := 0
	for _, m := range rec.Sent() {
		var w struct{ Type string }
		if json.Unmarshal(m.Data, &w) == nil && w.Type == "complete" {
			completes++
		}
	}
	if completes != 2 {
		t.Fatalf("%d complete messages, want 2", completes)
	}
}

// The scheduled function, invoked with a real EventBridge scheduled event,
// runs what no stream record will bring, and flushes before returning.
func TestSweepHandlerOnAScheduledEvent(t *testing.T) {
	ev := loadEvent[events.EventBridgeEvent](t, "eventbridge-scheduled-event.json")
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.Time.IsZero() || len(ev.Resources) != 1 {
		t.Fatalf("sample event decoded as %+v", ev)
	}
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	st := memory.New(memory.WithClock(clock.Now))
	router, rec, runs, ids := sweepFixture(t, st, clock)
	flusher := &countingFlusher{}
	h := awslambda.SweepHandler(sweepProcessor(st, rec, router, clock), awslambda.WithFlusher(flusher))

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // the invocation's deadline
	defer cancel()
	res, err := h(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := json.Marshal(res); string(out) != `{"ran":2}` {
		t.Fatalf("invocation result %s, want {\"ran\":2}", out)
	}
	checkSwept(t, st, rec, runs, ids)
	if flusher.n.Load() != 1 {
		t.Fatalf("flushed %d times", flusher.n.Load())
	}
	// The next scheduled invocation finds nothing to do.
	if res, err := h(ctx, ev); err != nil || res.Ran != 0 || runs.Load() != 2 {
		t.Fatalf("second sweep: %+v, runs %d, err %v", res, runs.Load(), err)
	}
}

// Out of time before it starts: nothing runs, nothing fails, the Flusher
// still runs, and the requests wait for the next sweep.
func TestSweepHandlerStartsNothingPastItsDeadline(t *testing.T) {
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	st := memory.New(memory.WithClock(clock.Now))
	router, rec, runs, ids := sweepFixture(t, st, clock)
	flusher := &countingFlusher{}
	h := awslambda.SweepHandler(sweepProcessor(st, rec, router, clock), awslambda.WithFlusher(flusher))
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	// Not the sweep's own time limit but the invocation's: reported.
	if _, err := h(ctx, loadEvent[events.EventBridgeEvent](t, "eventbridge-scheduled-event.json")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handler past the invocation's deadline = %v", err)
	}
	if runs.Load() != 0 || flusher.n.Load() != 1 {
		t.Fatalf("runs %d, flushes %d; want 0 and 1", runs.Load(), flusher.n.Load())
	}
	if got, _ := st.GetRequest(t.Context(), ids[0]); got.Status != store.StatusPending {
		t.Fatalf("request %s, want it left PENDING", got.Status)
	}
}

// The same on the real table (dynalite): requests queued by the router in
// the DynamoDB table, whose stream records are never delivered.
func TestSweepHandlerOnDynamoDB(t *testing.T) {
	client, prefix := dynamoClient(t)
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	st := dynamo.New(client, dynamo.WithPrefix(prefix), dynamo.WithClock(clock.Now))
	router, rec, runs, ids := sweepFixture(t, st, clock)
	h := awslambda.SweepHandler(sweepProcessor(st, rec, router, clock))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if res, err := h(ctx, loadEvent[events.EventBridgeEvent](t, "eventbridge-scheduled-event.json")); err != nil || res.Ran != 2 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	checkSwept(t, st, rec, runs, ids)
}
