package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

func testClaim(t *testing.T, e *env) {
	enqueue(t, e, newRequest("r-1"))
	e.clock.Advance(time.Second)
	now := e.clock.Now()
	got, err := e.reqs.Claim(t.Context(), "r-1", "worker-a", 30*time.Second)
	wantErr(t, "Claim", err, nil)
	if got.Status != store.StatusProcessing || got.LeaseOwner != "worker-a" || got.Attempts != 0 {
		t.Errorf("Claim returned %+v, want PROCESSING under worker-a, 0 attempts", got)
	}
	sameTime(t, "LeaseUntil", got.LeaseUntil, now.Add(30*time.Second))
	sameTime(t, "StartedAt", got.StartedAt, now)
	sameTime(t, "UpdatedAt", got.UpdatedAt, now)
	sameJSON(t, "claimed Payload", got.Payload, newRequest("r-1").Payload)
	stored := get(t, e, "r-1")
	if stored.Status != got.Status || stored.LeaseOwner != got.LeaseOwner || !stored.LeaseUntil.Equal(got.LeaseUntil) {
		t.Errorf("stored %+v differs from claimed %+v", stored, got)
	}
	// The lease is live: nobody else, not even the same owner, can claim.
	_, err = e.reqs.Claim(t.Context(), "r-1", "worker-b", time.Minute)
	wantErr(t, "second Claim", err, store.ErrConflict)
	_, err = e.reqs.Claim(t.Context(), "r-1", "worker-a", time.Minute)
	wantErr(t, "Claim by the holder", err, store.ErrConflict)
	if got := get(t, e, "r-1"); got.LeaseOwner != "worker-a" || !got.LeaseUntil.Equal(now.Add(30*time.Second)) {
		t.Errorf("a failed Claim changed the lease: %+v", got)
	}
	// Terminal requests cannot be claimed.
	_, err = e.reqs.Complete(t.Context(), "r-1", "worker-a", nil)
	wantErr(t, "Complete", err, nil)
	_, err = e.reqs.Claim(t.Context(), "r-1", "worker-b", time.Minute)
	wantErr(t, "Claim COMPLETED", err, store.ErrConflict)
}

func testClaimRace(t *testing.T, e *env) {
	enqueue(t, e, newRequest("r-1"))
	const n = 100
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   []string
		conflicts int
		others    []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			owner := fmt.Sprintf("worker-%03d", i)
			<-start
			_, err := e.reqs.Claim(t.Context(), "r-1", owner, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, owner)
			case errors.Is(err, store.ErrConflict):
				conflicts++
			default:
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("%d claims failed with something other than ErrConflict, first: %v", len(others), others[0])
	}
	if len(winners) != 1 || conflicts != n-1 {
		t.Fatalf("winners %q, conflicts %d; want exactly 1 winner and %d conflicts", winners, conflicts, n-1)
	}
	if got := get(t, e, "r-1"); got.LeaseOwner != winners[0] || got.Attempts != 0 {
		t.Errorf("stored lease owner %q attempts %d, want %q and 0", got.LeaseOwner, got.Attempts, winners[0])
	}
}

func testLeaseTakeOver(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	_, err := e.reqs.Claim(ctx, "r-1", "dead", 30*time.Second)
	wantErr(t, "Claim", err, nil)
	wantErr(t, "UpdateProgress by holder", e.reqs.UpdateProgress(ctx, "r-1", "dead", 10, "starting"), nil)

	e.clock.Advance(29 * time.Second)
	_, err = e.reqs.Claim(ctx, "r-1", "rescuer", time.Minute)
	wantErr(t, "Claim before expiry", err, store.ErrConflict)

	e.clock.Advance(2 * time.Second) // the lease expired a second ago
	now := e.clock.Now()
	got, err := e.reqs.Claim(ctx, "r-1", "rescuer", time.Minute)
	wantErr(t, "Claim after expiry", err, nil)
	if got.LeaseOwner != "rescuer" || got.Attempts != 1 || got.Status != store.StatusProcessing {
		t.Errorf("take-over = %+v, want PROCESSING under rescuer with 1 attempt", got)
	}
	// The new attempt starts from nothing, in what Claim returns and what
	// is stored.
	for what, r := range map[string]*store.AsyncRequest{"returned": got, "stored": get(t, e, "r-1")} {
		if r.Progress != 0 || r.ProgressMessage != "" {
			t.Errorf("take-over %s: progress %g %q, want 0 and none (the lost run's is not the new attempt's)", what, r.Progress, r.ProgressMessage)
		}
	}
	sameTime(t, "LeaseUntil", got.LeaseUntil, now.Add(time.Minute))

	// Every write by the worker that lost its lease is refused.
	wantErr(t, "stale UpdateProgress", e.reqs.UpdateProgress(ctx, "r-1", "dead", 50, "late"), store.ErrConflict)
	wantErr(t, "stale RenewLease", e.reqs.RenewLease(ctx, "r-1", "dead", time.Minute), store.ErrConflict)
	_, err = e.reqs.Complete(ctx, "r-1", "dead", json.RawMessage(`"late"`))
	wantErr(t, "stale Complete", err, store.ErrConflict)
	_, err = e.reqs.Fail(ctx, "r-1", "dead", store.RequestError{Code: "INTERNAL", Message: "late"})
	wantErr(t, "stale Fail", err, store.ErrConflict)
	_, err = e.reqs.Requeue(ctx, "r-1", "dead", store.RequestError{Code: "INTERNAL", Message: "late"}, 5)
	wantErr(t, "stale Requeue", err, store.ErrConflict)

	if got := get(t, e, "r-1"); got.LeaseOwner != "rescuer" || got.Status != store.StatusProcessing || got.Progress != 0 {
		t.Errorf("after stale writes: %+v, want rescuer's PROCESSING record untouched at 0%%", got)
	}
	done, err := e.reqs.Complete(ctx, "r-1", "rescuer", json.RawMessage(`{"ok":1}`))
	wantErr(t, "Complete by rescuer", err, nil)
	if done.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1", done.Attempts)
	}
}

func testRenewLease(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	wantErr(t, "RenewLease PENDING", e.reqs.RenewLease(ctx, "r-1", "w1", time.Minute), store.ErrConflict)
	_, err := e.reqs.Claim(ctx, "r-1", "w1", 30*time.Second)
	wantErr(t, "Claim", err, nil)
	e.clock.Advance(20 * time.Second)
	now := e.clock.Now()
	wantErr(t, "RenewLease", e.reqs.RenewLease(ctx, "r-1", "w1", 30*time.Second), nil)
	got := get(t, e, "r-1")
	sameTime(t, "LeaseUntil", got.LeaseUntil, now.Add(30*time.Second))
	wantErr(t, "RenewLease by other", e.reqs.RenewLease(ctx, "r-1", "w2", time.Minute), store.ErrConflict)

	// Past the first lease but inside the renewed one: still held.
	e.clock.Advance(20 * time.Second)
	_, err = e.reqs.Claim(ctx, "r-1", "w2", time.Minute)
	wantErr(t, "Claim inside renewed lease", err, store.ErrConflict)

	// An expired lease not yet taken over can still be renewed by its owner.
	e.clock.Advance(time.Minute)
	wantErr(t, "RenewLease after expiry", e.reqs.RenewLease(ctx, "r-1", "w1", time.Minute), nil)
	_, err = e.reqs.Claim(ctx, "r-1", "w2", time.Minute)
	wantErr(t, "Claim after late renewal", err, store.ErrConflict)

	_, err = e.reqs.Cancel(ctx, "r-1")
	wantErr(t, "Cancel", err, nil)
	wantErr(t, "RenewLease CANCELLED", e.reqs.RenewLease(ctx, "r-1", "w1", time.Minute), store.ErrConflict)
}

// testTakeOverRace is testClaimRace on the other path into PROCESSING: a
// lease that expired (its worker died) is taken over by exactly one of
// 100 rescuers, and the take-over is counted once.
func testTakeOverRace(t *testing.T, e *env) {
	enqueue(t, e, newRequest("r-1"))
	_, err := e.reqs.Claim(t.Context(), "r-1", "dead", 30*time.Second)
	wantErr(t, "Claim by the worker that dies", err, nil)
	e.clock.Advance(31 * time.Second)
	const n = 100
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		others  []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			owner := fmt.Sprintf("rescuer-%03d", i)
			<-start
			_, err := e.reqs.Claim(t.Context(), "r-1", owner, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, owner)
			case !errors.Is(err, store.ErrConflict):
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("%d take-overs failed with something other than ErrConflict, first: %v", len(others), others[0])
	}
	if len(winners) != 1 {
		t.Fatalf("winners %q; want exactly 1", winners)
	}
	if got := get(t, e, "r-1"); got.LeaseOwner != winners[0] || got.Attempts != 1 || got.Status != store.StatusProcessing {
		t.Errorf("stored %s under %q with %d attempts, want PROCESSING under %q with 1", got.Status, got.LeaseOwner, got.Attempts, winners[0])
	}
}

// testCancelCompleteRace: a client's Cancel and the worker's Complete
// racing on the same request both write conditionally, so exactly one
// wins and the stored record is the winner's, whole.
func testCancelCompleteRace(t *testing.T, e *env) {
	const rounds = 20
	for i := range rounds {
		id := fmt.Sprintf("r-%02d", i)
		enqueue(t, e, newRequest(id))
		claim(t, e, id, "w1")
	}
	type outcome struct{ cancelErr, completeErr error }
	results := make([]outcome, rounds)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range rounds {
		id := fmt.Sprintf("r-%02d", i)
		wg.Go(func() {
			<-start
			_, results[i].cancelErr = e.reqs.Cancel(t.Context(), id)
		})
		wg.Go(func() {
			<-start
			_, results[i].completeErr = e.reqs.Complete(t.Context(), id, "w1", json.RawMessage(`{"done":true}`))
		})
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		id := fmt.Sprintf("r-%02d", i)
		got := get(t, e, id)
		switch {
		case r.cancelErr == nil && errors.Is(r.completeErr, store.ErrConflict):
			if got.Status != store.StatusCancelled || len(got.Result) != 0 {
				t.Errorf("%s: Cancel won but stored %s with result %s", id, got.Status, got.Result)
			}
		case r.completeErr == nil && errors.Is(r.cancelErr, store.ErrConflict):
			if got.Status != store.StatusCompleted || string(got.Result) != `{"done":true}` || got.Progress != 100 {
				t.Errorf("%s: Complete won but stored %s with result %s at %v%%", id, got.Status, got.Result, got.Progress)
			}
		default:
			t.Errorf("%s: Cancel = %v, Complete = %v; want exactly one to win and the other ErrConflict", id, r.cancelErr, r.completeErr)
		}
		if got.LeaseOwner != "" {
			t.Errorf("%s: terminal request still leased by %q", id, got.LeaseOwner)
		}
	}
}
