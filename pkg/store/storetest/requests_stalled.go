package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// stalledLister adapts ListStalled to collect's list signature.
func stalledLister(e *env, pendingBefore time.Time) func(context.Context, string, int, string) ([]*store.AsyncRequest, string, error) {
	return func(ctx context.Context, _ string, limit int, cursor string) ([]*store.AsyncRequest, string, error) {
		return e.reqs.ListStalled(ctx, pendingBefore, limit, cursor)
	}
}

// sameSet fails t unless got holds each of want exactly once, in any
// order: ListStalled promises oldest first only where it is cheap.
func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s = %q, want each of %q once", what, g, w)
	}
}

func testListStalled(t *testing.T, e *env) {
	ctx := t.Context()
	const grace = time.Minute
	t0 := e.clock.Now()

	// Queued long ago and never picked up: its dispatch was lost.
	enqueue(t, e, newRequest("pending-old"))
	// Claimed by a worker that died: its 30 s lease runs out.
	enqueue(t, e, newRequest("processing-dead"))
	_, err := e.reqs.Claim(ctx, "processing-dead", "dead", 30*time.Second)
	wantErr(t, "Claim processing-dead", err, nil)
	// Put back for a retry, and then nobody retried it.
	enqueue(t, e, newRequest("pending-requeued"))
	claim(t, e, "pending-requeued", "w1")
	_, err = e.reqs.Requeue(ctx, "pending-requeued", "w1", store.RequestError{Code: "INTERNAL", Message: "flaky"}, 3)
	wantErr(t, "Requeue pending-requeued", err, nil)
	// Stalled, but its TTL passes before the sweep: it is gone.
	gone := newRequest("ttl-expired")
	gone.TTL = t0.Add(90 * time.Second).Unix()
	enqueue(t, e, gone)
	// Terminal requests are never stalled, however old.
	for _, id := range []string{"completed", "failed", "cancelled-running"} {
		enqueue(t, e, newRequest(id))
		_, err := e.reqs.Claim(ctx, id, "w1", 30*time.Second)
		wantErr(t, "Claim "+id, err, nil)
	}
	_, err = e.reqs.Complete(ctx, "completed", "w1", json.RawMessage(`{}`))
	wantErr(t, "Complete", err, nil)
	_, err = e.reqs.Fail(ctx, "failed", "w1", store.RequestError{Code: "INTERNAL", Message: "x"})
	wantErr(t, "Fail", err, nil)
	_, err = e.reqs.Cancel(ctx, "cancelled-running")
	wantErr(t, "Cancel running", err, nil)
	enqueue(t, e, newRequest("cancelled-pending"))
	_, err = e.reqs.Cancel(ctx, "cancelled-pending")
	wantErr(t, "Cancel pending", err, nil)

	e.clock.Advance(2 * time.Minute)
	// Queued exactly one grace before the sweep: not yet stalled.
	enqueue(t, e, newRequest("pending-new"))
	// Running under a live lease.
	enqueue(t, e, newRequest("processing-live"))
	_, err = e.reqs.Claim(ctx, "processing-live", "w2", 10*time.Minute)
	wantErr(t, "Claim processing-live", err, nil)
	// A lease that ends exactly now has expired, as Claim sees it.
	enqueue(t, e, newRequest("lease-ends-now"))
	_, err = e.reqs.Claim(ctx, "lease-ends-now", "w3", time.Minute)
	wantErr(t, "Claim lease-ends-now", err, nil)
	e.clock.Advance(time.Minute)

	pendingBefore := e.clock.Now().Add(-grace)
	want := []string{"pending-old", "processing-dead", "pending-requeued", "lease-ends-now"}
	for _, limit := range []int{1, 2, 3, 0, 100, math.MaxInt} {
		got := collect(t, "ListStalled", stalledLister(e, pendingBefore), "", limit)
		sameSet(t, fmt.Sprintf("ListStalled(limit %d)", limit), got, want)
	}
	page, next, err := e.reqs.ListStalled(ctx, pendingBefore, 100, "")
	wantErr(t, "ListStalled", err, nil)
	if next != "" {
		t.Errorf("ListStalled of everything: next cursor %q, want none", next)
	}
	for _, r := range page {
		if r.Action != "generate_report" || len(r.Payload) == 0 || !slices.Equal(r.Permissions, newRequest("").Permissions) {
			t.Errorf("listed request is incomplete: %+v", r)
		}
		if r.Status != store.StatusPending && r.Status != store.StatusProcessing {
			t.Errorf("listed %s with status %s", r.RequestID, r.Status)
		}
	}

	// A later pendingBefore takes in the newer PENDING request; a zero one
	// counts no PENDING request as stalled.
	got := collect(t, "ListStalled(now)", stalledLister(e, e.clock.Now()), "", 0)
	sameSet(t, "ListStalled(pendingBefore now)", got, append(slices.Clone(want), "pending-new"))
	got = collect(t, "ListStalled(zero)", stalledLister(e, time.Time{}), "", 0)
	sameSet(t, "ListStalled(pendingBefore zero)", got, []string{"processing-dead", "lease-ends-now"})

	// Once claimed (a live lease) or finished, a request is no longer
	// stalled.
	rescued, err := e.reqs.Claim(ctx, "processing-dead", "rescuer", time.Minute)
	wantErr(t, "Claim processing-dead by rescuer", err, nil)
	if rescued.Attempts != 1 {
		t.Errorf("take-over counted %d attempts, want 1", rescued.Attempts)
	}
	claim(t, e, "pending-old", "rescuer")
	_, err = e.reqs.Complete(ctx, "pending-old", "rescuer", nil)
	wantErr(t, "Complete pending-old", err, nil)
	got = collect(t, "ListStalled after rescue", stalledLister(e, pendingBefore), "", 0)
	sameSet(t, "ListStalled after rescue", got, []string{"pending-requeued", "lease-ends-now"})

	// The rescuer's lease runs out in turn.
	e.clock.Advance(time.Minute)
	got = collect(t, "ListStalled after the rescuer's lease", stalledLister(e, pendingBefore), "", 0)
	sameSet(t, "ListStalled after the rescuer's lease", got, []string{"pending-requeued", "lease-ends-now", "processing-dead"})
}

func testListStalledPaging(t *testing.T, e *env) {
	ctx := t.Context()
	var want, dead []string
	for i := range 11 {
		id := fmt.Sprintf("s-%02d", 10-i) // IDs sort opposite to creation order
		enqueue(t, e, newRequest(id))
		if i%2 == 1 {
			_, err := e.reqs.Claim(ctx, id, "dead", time.Second)
			wantErr(t, "Claim "+id, err, nil)
			dead = append(dead, id)
		}
		want = append(want, id)
		live := newRequest(fmt.Sprintf("live-%02d", i))
		enqueue(t, e, live)
		claim(t, e, live.RequestID, "alive")
		e.clock.Advance(time.Millisecond)
	}
	e.clock.Advance(time.Hour) // the live ones' leases are renewed meanwhile:
	for i := range 11 {
		wantErr(t, "RenewLease", e.reqs.RenewLease(ctx, fmt.Sprintf("live-%02d", i), "alive", time.Minute), nil)
	}
	pendingBefore := e.clock.Now().Add(-time.Minute)
	for _, limit := range []int{1, 2, 3, 0} {
		got := collect(t, "ListStalled", stalledLister(e, pendingBefore), "", limit)
		sameSet(t, fmt.Sprintf("ListStalled(limit %d)", limit), got, want)
	}

	// A pass survives claims between its pages: nothing is listed twice,
	// and a request claimed before the pass reached it is not listed.
	page, next, err := e.reqs.ListStalled(ctx, pendingBefore, 2, "")
	wantErr(t, "ListStalled first page", err, nil)
	if len(page) != 2 || next == "" {
		t.Fatalf("first page: %d requests, next %q", len(page), next)
	}
	seen := []string{page[0].RequestID, page[1].RequestID}
	var claimed string
	for _, id := range want {
		if !slices.Contains(seen, id) {
			claimed = id
			claim(t, e, id, "sweeper")
			break
		}
	}
	for next != "" {
		page, next, err = e.reqs.ListStalled(ctx, pendingBefore, 2, next)
		wantErr(t, "ListStalled next page", err, nil)
		for _, r := range page {
			seen = append(seen, r.RequestID)
		}
	}
	sameSet(t, "pass across a claim", seen, slices.DeleteFunc(slices.Clone(want), func(id string) bool { return id == claimed }))

	// With no PENDING request old enough, only the dead workers' requests
	// (but not the one the sweeper claimed) are stalled.
	got := collect(t, "ListStalled(zero)", stalledLister(e, time.Time{}), "", 0)
	sameSet(t, "ListStalled(pendingBefore zero)", got, slices.DeleteFunc(dead, func(id string) bool { return id == claimed }))
}

func testListStalledBadInput(t *testing.T, e *env) {
	enqueue(t, e, newRequest("r-1"))
	e.clock.Advance(time.Hour)
	for _, bad := range []string{"not a cursor!", "e30x", "%%%", "eyJyIjo5OTl9"} { // the last: {"r":999}
		_, _, err := e.reqs.ListStalled(t.Context(), e.clock.Now(), 10, bad)
		wantErr(t, fmt.Sprintf("ListStalled cursor %q", bad), err, store.ErrInvalidInput)
	}
	_, _, err := e.reqs.ListStalled(cancelledContext(), e.clock.Now(), 10, "")
	wantErr(t, "ListStalled cancelled", err, context.Canceled)
	got := collect(t, "ListStalled", stalledLister(e, e.clock.Now()), "", 0)
	if strings.Join(got, ",") != "r-1" {
		t.Errorf("ListStalled = %q, want r-1", got)
	}
}
