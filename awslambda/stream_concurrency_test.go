package awslambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// TestWithStreamConcurrency: a batch of 6 requests runs 2 at a time under
// WithStreamConcurrency(2): while the first two hold, no third starts,
// and all six complete.
func TestWithStreamConcurrency(t *testing.T) {
	const n, total = 2, 6
	mem := memory.New()
	capture := &itemCapture{}
	ddb := dynamo.New(capture)
	var records []map[string]any
	for i := range total {
		req := &store.AsyncRequest{RequestID: fmt.Sprintf("r-%d", i), ClientRequestID: fmt.Sprintf("c-%d", i), ConnectionID: "conn",
			UserID: "alice", Action: "work", Payload: json.RawMessage(`{}`), TTL: time.Now().Add(time.Hour).Unix()}
		if err := mem.Enqueue(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		if err := ddb.Enqueue(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		records = append(records, streamRecord("INSERT", fmt.Sprint(200+i), capture.items[i]))
	}

	var running, most, runs atomic.Int32
	started := make(chan struct{}, total)
	release := make(chan struct{})
	r := streamer.NewRouter(mem, &connectiontest.Recorder{})
	r.HandleAsyncFunc("work", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		now := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		runs.Add(1)
		started <- struct{}{}
		select {
		case <-release:
			return "ok", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	h := awslambda.StreamHandler(streamer.NewProcessor(mem, &connectiontest.Recorder{}, r.Actions()), awslambda.WithStreamConcurrency(n))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		resp, err := h(ctx, decodeEvent(t, records...))
		if err == nil && len(resp.BatchItemFailures) > 0 {
			err = fmt.Errorf("failures %+v", resp.BatchItemFailures)
		}
		done <- err
	}()
	for range n {
		<-started
	}
	// Both slots are held: no third run may start. A broken limit shows
	// within the grace (the other runs are ready at once); a correct one
	// never does, so the grace cannot make the test fail.
	select {
	case <-started:
		t.Fatalf("a third run started while %d held their slots", n)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if runs.Load() != total || most.Load() != n {
		t.Fatalf("%d runs, at most %d at once; want %d runs, %d at once", runs.Load(), most.Load(), total, n)
	}
	for i := range total {
		if got, err := mem.GetRequest(t.Context(), fmt.Sprintf("r-%d", i)); err != nil || got.Status != store.StatusCompleted {
			t.Fatalf("r-%d: %+v %v", i, got, err)
		}
	}
}
