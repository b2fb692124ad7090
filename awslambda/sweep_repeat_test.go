package awslambda_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// With WithSweepRepeat, one invocation takes over a request whose dead
// worker's lease ends after the invocation started: a single sweep at its
// start would have found the lease still running and left the request to
// the next scheduled invocation.
func TestSweepRepeatTakesOverALeaseEndingDuringTheInvocation(t *testing.T) {
	st := memory.New()
	rec := &connectiontest.Recorder{}
	router := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st))
	router.HandleAsyncFunc("work", func(_ context.Context, _ *streamer.Request, p progress.Reporter) (any, error) {
		_ = p.Report(100, "done")
		return "ok", nil
	})
	ar := &store.AsyncRequest{RequestID: "r-1", ClientRequestID: "1", ConnectionID: "c1", UserID: "alice", Action: "work", TTL: time.Now().Add(time.Hour).Unix()}
	if err := st.Enqueue(t.Context(), ar); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(t.Context(), ar.RequestID, "dead-lambda", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	h := awslambda.SweepHandler(streamer.NewProcessor(st, rec, router.Actions(), streamer.WithProcessorConnections(st)), awslambda.WithSweepRepeat(50*time.Millisecond, 3*time.Second))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := h(ctx, events.EventBridgeEvent{ID: "ev-1", DetailType: "Scheduled Event"})
	if err != nil || res.Ran != 1 {
		t.Fatalf("sweep = %+v, %v; want the request run once", res, err)
	}
	got, err := st.GetRequest(t.Context(), ar.RequestID)
	if err != nil || got.Status != store.StatusCompleted || got.Attempts != 1 {
		t.Fatalf("stored %+v, %v; want COMPLETED after one take-over", got, err)
	}
}

// Without the option an invocation sweeps once: the live lease is left.
func TestSweepOnceLeavesALiveLease(t *testing.T) {
	st := memory.New()
	actions := streamer.NewActions()
	actions.HandleAsyncFunc("work", func(context.Context, *streamer.Request, progress.Reporter) (any, error) { return "ok", nil })
	ar := &store.AsyncRequest{RequestID: "r-1", ClientRequestID: "1", ConnectionID: "c1", UserID: "alice", Action: "work", TTL: time.Now().Add(time.Hour).Unix()}
	if err := st.Enqueue(t.Context(), ar); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(t.Context(), ar.RequestID, "live-lambda", time.Minute); err != nil {
		t.Fatal(err)
	}
	res, err := awslambda.SweepHandler(streamer.NewProcessor(st, &connectiontest.Recorder{}, actions))(t.Context(), events.EventBridgeEvent{})
	if err != nil || res.Ran != 0 {
		t.Fatalf("sweep = %+v, %v; want nothing run", res, err)
	}
}

// The sweep function of a deployment scheduled at rate(1 minute): each
// invocation sweeps every 5 s for 50 s, so a request whose Lambda died is
// taken over about 5 s after its lease ends (deploy/README.md).
func ExampleWithSweepRepeat() {
	var proc *streamer.Processor // streamer.NewProcessor(st, mgr, router.Actions(), ...), as in the package example
	lambda.Start(awslambda.SweepHandler(proc, awslambda.WithSweepRepeat(5*time.Second, 50*time.Second)))
}
