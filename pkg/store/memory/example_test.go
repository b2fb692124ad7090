package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// A request goes through its lifecycle: enqueue, claim by one worker,
// progress, completion. A second claimer loses with ErrConflict.
func Example() {
	ctx := context.Background()
	s := memory.New()

	err := s.Enqueue(ctx, &store.AsyncRequest{
		RequestID: "r-1", ConnectionID: "c-1", UserID: "u-1",
		Action: "report", Payload: json.RawMessage(`{"month":"2026-11"}`),
	})
	fmt.Println("enqueue:", err)

	r, _ := s.Claim(ctx, "r-1", "worker-a", time.Minute)
	fmt.Println("claimed by", r.LeaseOwner, "status", r.Status)

	_, err = s.Claim(ctx, "r-1", "worker-b", time.Minute)
	fmt.Println("second claim conflicts:", errors.Is(err, store.ErrConflict))

	_ = s.UpdateProgress(ctx, "r-1", "worker-a", 50, "half way")
	done, _ := s.Complete(ctx, "r-1", "worker-a", json.RawMessage(`{"rows":42}`))
	fmt.Println(done.Status, string(done.Result))
	// Output:
	// enqueue: <nil>
	// claimed by worker-a status PROCESSING
	// second claim conflicts: true
	// COMPLETED {"rows":42}
}

// WithClock makes TTL expiry testable without sleeping.
func ExampleWithClock() {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := memory.New(memory.WithClock(func() time.Time { return now }))

	_ = s.Save(ctx, &store.Connection{ConnectionID: "c-1", UserID: "u-1", TTL: now.Add(time.Hour).Unix()})
	_, err := s.Get(ctx, "c-1")
	fmt.Println("before TTL:", err)

	now = now.Add(2 * time.Hour)
	_, err = s.Get(ctx, "c-1")
	fmt.Println("after TTL, not found:", errors.Is(err, store.ErrNotFound))
	// Output:
	// before TTL: <nil>
	// after TTL, not found: true
}
