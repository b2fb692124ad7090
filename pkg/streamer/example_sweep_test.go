package streamer_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// A worker claimed a request and died. No delivery will bring it back;
// once its lease has run out, a sweep finds it and runs it. In `streamer
// dev` the pool sweeps by itself every minute; on Lambda, a scheduled
// function calls Sweep (awslambda.SweepHandler).
func ExampleProcessor_Sweep() {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	st := memory.New(memory.WithClock(clock))
	router := streamer.NewRouter(st, &connectiontest.Recorder{}, streamer.WithConnectionStore(st), streamer.WithClock(clock))
	router.HandleAsyncFunc("report", func(ctx context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		return "report for " + req.Identity.UserID, nil
	})
	_ = st.Enqueue(ctx, &store.AsyncRequest{RequestID: "r-1", ConnectionID: "c1", UserID: "alice", Action: "report"})
	_, _ = st.Claim(ctx, "r-1", "worker-that-crashed", streamer.DefaultLease)

	proc := streamer.NewProcessor(st, &connectiontest.Recorder{}, router.Actions(),
		streamer.WithProcessorConnections(st), streamer.WithProcessorClock(clock))
	ran, _ := proc.Sweep(ctx)
	fmt.Println("while the lease holds:", ran)

	mu.Lock()
	now = now.Add(streamer.DefaultLease)
	mu.Unlock()
	ran, err := proc.Sweep(ctx)
	r, _ := st.GetRequest(ctx, "r-1")
	fmt.Println("after it ran out:", ran, err, r.Status, string(r.Result), "attempts:", r.Attempts)
	// Output:
	// while the lease holds: 0
	// after it ran out: 1 <nil> COMPLETED "report for alice" attempts: 1
}
