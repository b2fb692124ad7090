package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// An async request's life through the RequestStore: queued, claimed by one
// worker under a lease, then completed. Code written against the interface
// runs the same on memory.New() and dynamo.New(...).
func Example_requestLifecycle() {
	ctx := context.Background()
	var requests store.RequestStore = memory.New()

	_ = requests.Enqueue(ctx, &store.AsyncRequest{
		RequestID: "r-1", ConnectionID: "c-1", UserID: "alice", Action: "report",
		Payload: json.RawMessage(`{"seconds":5}`),
	})
	// A resubmission of the same request is refused, so it never runs twice.
	err := requests.Enqueue(ctx, &store.AsyncRequest{RequestID: "r-1", ConnectionID: "c-2"})
	fmt.Println("resubmit:", errors.Is(err, store.ErrAlreadyExists))

	r, _ := requests.Claim(ctx, "r-1", "worker-a", time.Minute)
	fmt.Println("claimed:", r.Status)
	// A second worker loses the race.
	_, err = requests.Claim(ctx, "r-1", "worker-b", time.Minute)
	fmt.Println("second claim:", errors.Is(err, store.ErrConflict))

	_ = requests.UpdateProgress(ctx, "r-1", "worker-a", 50, "halfway")
	r, _ = requests.Complete(ctx, "r-1", "worker-a", json.RawMessage(`{"ok":true}`))
	fmt.Println("done:", r.Status, r.Status.Terminal(), string(r.Result))
	// Output:
	// resubmit: true
	// claimed: PROCESSING
	// second claim: true
	// done: COMPLETED true {"ok":true}
}

// A connection record whose TTL has passed is invisible to reads, because
// API Gateway's $disconnect may never arrive.
func ExampleConnection_Expired() {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := &store.Connection{ConnectionID: "L0SM9cOFvHcCIhw=", TTL: now.Add(-time.Second).Unix()}
	fmt.Println(c.Expired(now))
	// Output: true
}

// A store that is a RouteGetter answers the lookup a send needs without
// copying the whole record.
func ExampleRouteGetter() {
	ctx := context.Background()
	var st store.ConnectionStore = memory.New()
	_ = st.Save(ctx, &store.Connection{
		ConnectionID: "L0SM9cOFvHcCIhw=",
		Endpoint:     "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
		Permissions:  []string{"reports:read"},
	})
	if rg, ok := st.(store.RouteGetter); ok {
		r, err := rg.GetRoute(ctx, "L0SM9cOFvHcCIhw=")
		fmt.Println(r.Endpoint, err)
		_, err = rg.GetRoute(ctx, "gone")
		fmt.Println(errors.Is(err, store.ErrNotFound))
	}
	// Output:
	// https://abc123.execute-api.eu-west-1.amazonaws.com/prod <nil>
	// true
}
