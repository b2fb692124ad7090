package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

var requestTests = []testCase{
	{"EnqueueGetRoundTrip", testEnqueueGet},
	{"EnqueueDuplicate", testEnqueueDuplicate},
	{"EnqueueOverExpired", testEnqueueOverExpired},
	{"ReturnsCopies", testRequestCopies},
	{"GetMissing", testGetRequestMissing},
	{"Claim", testClaim},
	{"ClaimRace100", testClaimRace},
	{"LeaseExpiryTakeOver", testLeaseTakeOver},
	{"RenewLease", testRenewLease},
	{"UpdateProgress", testUpdateProgress},
	{"Complete", testComplete},
	{"Fail", testFail},
	{"RequeueUpToMax", testRequeue},
	{"Cancel", testCancel},
	{"CancelStopsRunningHandler", testCancelRunning},
	{"MissingRequest", testMissingRequest},
	{"TTLHidesExpired", testRequestTTL},
	{"ListOrderAndPaging", testListRequests},
	{"ListBadInput", testListRequestsBadInput},
	{"InvalidInput", testRequestInvalidInput},
	{"TooLarge", testRequestTooLarge},
	{"CancelledContext", testRequestCancelledContext},
}

func newRequest(id string) *store.AsyncRequest {
	return &store.AsyncRequest{
		RequestID:       id,
		ClientRequestID: "client-" + id,
		ConnectionID:    "conn-1",
		UserID:          "user-1",
		TenantID:        "tenant-1",
		Action:          "generate_report",
		Payload:         json.RawMessage(`{"month":"2026-11","rows":[1,2,3]}`),
	}
}

func enqueue(t *testing.T, e *env, r *store.AsyncRequest) {
	t.Helper()
	wantErr(t, "Enqueue "+r.RequestID, e.reqs.Enqueue(t.Context(), r), nil)
}

func get(t *testing.T, e *env, id string) *store.AsyncRequest {
	t.Helper()
	r, err := e.reqs.GetRequest(t.Context(), id)
	wantErr(t, "GetRequest "+id, err, nil)
	return r
}

func claim(t *testing.T, e *env, id, owner string) *store.AsyncRequest {
	t.Helper()
	r, err := e.reqs.Claim(t.Context(), id, owner, time.Minute)
	wantErr(t, "Claim "+id+" by "+owner, err, nil)
	return r
}

func wantStatus(t *testing.T, e *env, id string, want store.Status) *store.AsyncRequest {
	t.Helper()
	r := get(t, e, id)
	if r.Status != want {
		t.Fatalf("%s: status %s, want %s", id, r.Status, want)
	}
	return r
}

func sameJSON(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func testEnqueueGet(t *testing.T, e *env) {
	r := newRequest("r-1")
	r.TTL = e.clock.Now().Add(24 * time.Hour).Unix()
	enqueue(t, e, r)
	now := e.clock.Now()
	if r.Status != store.StatusPending || !r.CreatedAt.Equal(now) || !r.UpdatedAt.Equal(now) {
		t.Errorf("Enqueue left the caller's record at status %s created %v updated %v", r.Status, r.CreatedAt, r.UpdatedAt)
	}
	got := get(t, e, "r-1")
	want := newRequest("r-1")
	if got.RequestID != want.RequestID || got.ClientRequestID != want.ClientRequestID ||
		got.ConnectionID != want.ConnectionID || got.UserID != want.UserID || got.TenantID != want.TenantID ||
		got.Action != want.Action || got.TTL != r.TTL {
		t.Errorf("GetRequest = %+v, want %+v", got, r)
	}
	sameJSON(t, "Payload", got.Payload, want.Payload)
	if got.Status != store.StatusPending || got.Progress != 0 || got.Attempts != 0 ||
		got.LeaseOwner != "" || got.Error != nil || len(got.Result) != 0 {
		t.Errorf("new request = %+v, want PENDING with no progress, attempts, lease, error or result", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, now)
	sameTime(t, "UpdatedAt", got.UpdatedAt, now)
	if !got.StartedAt.IsZero() || !got.CompletedAt.IsZero() || !got.LeaseUntil.IsZero() {
		t.Errorf("new request has StartedAt %v CompletedAt %v LeaseUntil %v", got.StartedAt, got.CompletedAt, got.LeaseUntil)
	}
	// Enqueue makes a new request PENDING whatever status it was given.
	odd := newRequest("r-2")
	odd.Status = store.StatusCompleted
	enqueue(t, e, odd)
	wantStatus(t, e, "r-2", store.StatusPending)
	// No payload at all is fine.
	bare := &store.AsyncRequest{RequestID: "r-3", ConnectionID: "conn-1"}
	enqueue(t, e, bare)
	if got := get(t, e, "r-3"); len(got.Payload) != 0 || got.UserID != "" {
		t.Errorf("bare request came back as %+v", got)
	}
}

func testEnqueueDuplicate(t *testing.T, e *env) {
	enqueue(t, e, newRequest("r-1"))
	claim(t, e, "r-1", "w1")
	dup := newRequest("r-1")
	dup.Payload = json.RawMessage(`{"other":true}`)
	wantErr(t, "Enqueue duplicate", e.reqs.Enqueue(t.Context(), dup), store.ErrAlreadyExists)
	got := wantStatus(t, e, "r-1", store.StatusProcessing)
	sameJSON(t, "Payload after duplicate", got.Payload, newRequest("r-1").Payload)
	if got.LeaseOwner != "w1" {
		t.Errorf("duplicate Enqueue changed the lease owner to %q", got.LeaseOwner)
	}
}

func testEnqueueOverExpired(t *testing.T, e *env) {
	r := newRequest("r-1")
	r.TTL = e.clock.Now().Add(time.Minute).Unix()
	enqueue(t, e, r)
	e.clock.Advance(time.Minute)
	// The old record is invisible, so its ID is free again.
	r2 := newRequest("r-1")
	r2.Action = "second"
	enqueue(t, e, r2)
	if got := get(t, e, "r-1"); got.Action != "second" || got.TTL != 0 {
		t.Errorf("re-enqueued request = %+v, want the new one", got)
	}
}

func testRequestCopies(t *testing.T, e *env) {
	r := newRequest("r-1")
	enqueue(t, e, r)
	r.Payload[2] = 'X'
	r.Action = "changed"
	got := get(t, e, "r-1")
	got.Payload[2] = 'Y'
	got.Status = store.StatusCompleted
	got = get(t, e, "r-1")
	sameJSON(t, "Payload", got.Payload, newRequest("r-1").Payload)
	if got.Action != "generate_report" || got.Status != store.StatusPending {
		t.Errorf("stored request changed through a caller's pointer: %+v", got)
	}
	claimed := claim(t, e, "r-1", "w1")
	result := json.RawMessage(`{"ok":true}`)
	done, err := e.reqs.Complete(t.Context(), "r-1", "w1", result)
	wantErr(t, "Complete", err, nil)
	result[2] = 'X'
	done.Result[2] = 'Y'
	claimed.Status = store.StatusPending
	sameJSON(t, "Result", get(t, e, "r-1").Result, json.RawMessage(`{"ok":true}`))
	page, _, err := e.reqs.ListRequestsByConnection(t.Context(), "conn-1", 0, "")
	wantErr(t, "ListRequestsByConnection", err, nil)
	page[0].Payload[2] = 'Z'
	sameJSON(t, "Payload after list", get(t, e, "r-1").Payload, newRequest("r-1").Payload)
}

func testGetRequestMissing(t *testing.T, e *env) {
	_, err := e.reqs.GetRequest(t.Context(), "nope")
	wantErr(t, "GetRequest missing", err, store.ErrNotFound)
}

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

	if got := get(t, e, "r-1"); got.LeaseOwner != "rescuer" || got.Status != store.StatusProcessing || got.Progress != 10 {
		t.Errorf("after stale writes: %+v, want rescuer's PROCESSING record untouched at 10%%", got)
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

func testUpdateProgress(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	wantErr(t, "UpdateProgress PENDING", e.reqs.UpdateProgress(ctx, "r-1", "w1", 5, "x"), store.ErrConflict)
	claim(t, e, "r-1", "w1")
	e.clock.Advance(time.Second)
	wantErr(t, "UpdateProgress", e.reqs.UpdateProgress(ctx, "r-1", "w1", 42.5, "crunching"), nil)
	got := get(t, e, "r-1")
	if got.Progress != 42.5 || got.ProgressMessage != "crunching" || got.Status != store.StatusProcessing {
		t.Errorf("after UpdateProgress: %+v", got)
	}
	sameTime(t, "UpdatedAt", got.UpdatedAt, e.clock.Now())
	wantErr(t, "UpdateProgress to 0 with no message", e.reqs.UpdateProgress(ctx, "r-1", "w1", 0, ""), nil)
	if got := get(t, e, "r-1"); got.Progress != 0 || got.ProgressMessage != "" {
		t.Errorf("progress not reset: %v %q", got.Progress, got.ProgressMessage)
	}
	wantErr(t, "UpdateProgress to 100", e.reqs.UpdateProgress(ctx, "r-1", "w1", 100, "done"), nil)
	wantErr(t, "UpdateProgress by other", e.reqs.UpdateProgress(ctx, "r-1", "w2", 50, "x"), store.ErrConflict)
	for _, bad := range []float64{-1, 100.5, math.NaN(), math.Inf(1)} {
		wantErr(t, fmt.Sprintf("UpdateProgress(%v)", bad), e.reqs.UpdateProgress(ctx, "r-1", "w1", bad, ""), store.ErrInvalidInput)
	}
	if got := get(t, e, "r-1"); got.Progress != 100 || got.ProgressMessage != "done" {
		t.Errorf("rejected updates changed progress: %v %q", got.Progress, got.ProgressMessage)
	}
	_, err := e.reqs.Complete(ctx, "r-1", "w1", nil)
	wantErr(t, "Complete", err, nil)
	wantErr(t, "UpdateProgress COMPLETED", e.reqs.UpdateProgress(ctx, "r-1", "w1", 50, "x"), store.ErrConflict)
}

func testComplete(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	_, err := e.reqs.Complete(ctx, "r-1", "w1", json.RawMessage(`1`))
	wantErr(t, "Complete PENDING", err, store.ErrConflict)
	claim(t, e, "r-1", "w1")
	wantErr(t, "UpdateProgress", e.reqs.UpdateProgress(ctx, "r-1", "w1", 60, "almost"), nil)
	_, err = e.reqs.Complete(ctx, "r-1", "w2", json.RawMessage(`1`))
	wantErr(t, "Complete by other", err, store.ErrConflict)
	_, err = e.reqs.Complete(ctx, "r-1", "w1", json.RawMessage(`{"broken"`))
	wantErr(t, "Complete invalid JSON", err, store.ErrInvalidInput)
	wantStatus(t, e, "r-1", store.StatusProcessing)

	e.clock.Advance(3 * time.Second)
	result := json.RawMessage(`{"url":"https://example.com/r.pdf","pages":12}`)
	done, err := e.reqs.Complete(ctx, "r-1", "w1", result)
	wantErr(t, "Complete", err, nil)
	for what, r := range map[string]*store.AsyncRequest{"returned": done, "stored": get(t, e, "r-1")} {
		if r.Status != store.StatusCompleted || r.Progress != 100 || r.LeaseOwner != "" || !r.LeaseUntil.IsZero() || r.Error != nil {
			t.Errorf("%s: %+v, want COMPLETED at 100%% with no lease or error", what, r)
		}
		sameJSON(t, what+" Result", r.Result, result)
		sameTime(t, what+" CompletedAt", r.CompletedAt, e.clock.Now())
		sameJSON(t, what+" Payload", r.Payload, newRequest("r-1").Payload)
	}
	_, err = e.reqs.Complete(ctx, "r-1", "w1", result)
	wantErr(t, "Complete twice", err, store.ErrConflict)
	_, err = e.reqs.Fail(ctx, "r-1", "w1", store.RequestError{Code: "INTERNAL", Message: "x"})
	wantErr(t, "Fail COMPLETED", err, store.ErrConflict)
	_, err = e.reqs.Cancel(ctx, "r-1")
	wantErr(t, "Cancel COMPLETED", err, store.ErrConflict)
	wantStatus(t, e, "r-1", store.StatusCompleted)
}

func testFail(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	reqErr := store.RequestError{Code: "TIMEOUT", Message: "report took too long"}
	_, err := e.reqs.Fail(ctx, "r-1", "w1", reqErr)
	wantErr(t, "Fail PENDING", err, store.ErrConflict)
	claim(t, e, "r-1", "w1")
	_, err = e.reqs.Fail(ctx, "r-1", "w1", store.RequestError{Message: "no code"})
	wantErr(t, "Fail without code", err, store.ErrInvalidInput)
	_, err = e.reqs.Fail(ctx, "r-1", "w2", reqErr)
	wantErr(t, "Fail by other", err, store.ErrConflict)
	failed, err := e.reqs.Fail(ctx, "r-1", "w1", reqErr)
	wantErr(t, "Fail", err, nil)
	for what, r := range map[string]*store.AsyncRequest{"returned": failed, "stored": get(t, e, "r-1")} {
		if r.Status != store.StatusFailed || r.Error == nil || *r.Error != reqErr || r.LeaseOwner != "" {
			t.Errorf("%s: %+v (error %+v), want FAILED with %+v", what, r, r.Error, reqErr)
		}
		sameTime(t, what+" CompletedAt", r.CompletedAt, e.clock.Now())
	}
	_, err = e.reqs.Claim(ctx, "r-1", "w2", time.Minute)
	wantErr(t, "Claim FAILED", err, store.ErrConflict)
	_, err = e.reqs.Fail(ctx, "r-1", "w1", reqErr)
	wantErr(t, "Fail twice", err, store.ErrConflict)
}

func testRequeue(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	errN := func(n int) store.RequestError {
		return store.RequestError{Code: "INTERNAL", Message: fmt.Sprintf("attempt %d failed", n)}
	}
	_, err := e.reqs.Requeue(ctx, "r-1", "w1", errN(0), 3)
	wantErr(t, "Requeue PENDING", err, store.ErrConflict)
	for attempt := 1; attempt <= 3; attempt++ {
		owner := fmt.Sprintf("w%d", attempt)
		claim(t, e, "r-1", owner)
		wantErr(t, "UpdateProgress", e.reqs.UpdateProgress(ctx, "r-1", owner, 30, "working"), nil)
		_, err := e.reqs.Requeue(ctx, "r-1", owner, errN(attempt), 0)
		wantErr(t, "Requeue maxAttempts 0", err, store.ErrInvalidInput)
		_, err = e.reqs.Requeue(ctx, "r-1", owner, store.RequestError{}, 3)
		wantErr(t, "Requeue without code", err, store.ErrInvalidInput)
		got, err := e.reqs.Requeue(ctx, "r-1", owner, errN(attempt), 3)
		wantErr(t, "Requeue", err, nil)
		want := store.StatusPending
		if attempt == 3 {
			want = store.StatusFailed
		}
		for what, r := range map[string]*store.AsyncRequest{"returned": got, "stored": get(t, e, "r-1")} {
			if r.Status != want || r.Attempts != attempt || r.LeaseOwner != "" || r.Error == nil || *r.Error != errN(attempt) {
				t.Fatalf("attempt %d %s: status %s attempts %d owner %q error %+v; want %s, %d, no owner, %+v",
					attempt, what, r.Status, r.Attempts, r.LeaseOwner, r.Error, want, attempt, errN(attempt))
			}
		}
		// The worker gave the request up: its writes are refused now.
		wantErr(t, "UpdateProgress after Requeue", e.reqs.UpdateProgress(ctx, "r-1", owner, 40, "x"), store.ErrConflict)
		e.clock.Advance(time.Second)
	}
	if got := get(t, e, "r-1"); got.CompletedAt.IsZero() {
		t.Error("FAILED after the last attempt has no CompletedAt")
	}
	_, err = e.reqs.Claim(ctx, "r-1", "w4", time.Minute)
	wantErr(t, "Claim after final failure", err, store.ErrConflict)

	// maxAttempts 1 fails on the first requeue; a taken-over lease counts.
	enqueue(t, e, newRequest("r-2"))
	_, err = e.reqs.Claim(ctx, "r-2", "lost", time.Second)
	wantErr(t, "Claim r-2", err, nil)
	e.clock.Advance(2 * time.Second)
	claim(t, e, "r-2", "w1")
	got, err := e.reqs.Requeue(ctx, "r-2", "w1", errN(2), 2)
	wantErr(t, "Requeue r-2", err, nil)
	if got.Status != store.StatusFailed || got.Attempts != 2 {
		t.Errorf("r-2 = %s with %d attempts, want FAILED with 2 (take-over + requeue)", got.Status, got.Attempts)
	}
	enqueue(t, e, newRequest("r-3"))
	claim(t, e, "r-3", "w1")
	if got, err := e.reqs.Requeue(ctx, "r-3", "w1", errN(1), 1); err != nil || got.Status != store.StatusFailed {
		t.Errorf("Requeue with maxAttempts 1 = %v, %v; want FAILED", got, err)
	}
}

func testCancel(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	e.clock.Advance(time.Second)
	got, err := e.reqs.Cancel(ctx, "r-1")
	wantErr(t, "Cancel PENDING", err, nil)
	if got.Status != store.StatusCancelled {
		t.Errorf("Cancel returned %s", got.Status)
	}
	sameTime(t, "CompletedAt", wantStatus(t, e, "r-1", store.StatusCancelled).CompletedAt, e.clock.Now())
	_, err = e.reqs.Claim(ctx, "r-1", "w1", time.Minute)
	wantErr(t, "Claim CANCELLED", err, store.ErrConflict)
	_, err = e.reqs.Cancel(ctx, "r-1")
	wantErr(t, "Cancel twice", err, store.ErrConflict)

	enqueue(t, e, newRequest("r-2"))
	claim(t, e, "r-2", "w1")
	_, err = e.reqs.Fail(ctx, "r-2", "w1", store.RequestError{Code: "INTERNAL", Message: "boom"})
	wantErr(t, "Fail", err, nil)
	_, err = e.reqs.Cancel(ctx, "r-2")
	wantErr(t, "Cancel FAILED", err, store.ErrConflict)
	wantStatus(t, e, "r-2", store.StatusFailed)
}

// testCancelRunning is how a handler learns it was cancelled: its next
// progress update (or completion) fails with ErrConflict.
func testCancelRunning(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	claim(t, e, "r-1", "w1")
	wantErr(t, "UpdateProgress", e.reqs.UpdateProgress(ctx, "r-1", "w1", 20, "step 1"), nil)
	got, err := e.reqs.Cancel(ctx, "r-1")
	wantErr(t, "Cancel PROCESSING", err, nil)
	if got.Status != store.StatusCancelled || got.LeaseOwner != "" {
		t.Errorf("Cancel returned %+v", got)
	}
	wantErr(t, "UpdateProgress CANCELLED", e.reqs.UpdateProgress(ctx, "r-1", "w1", 40, "step 2"), store.ErrConflict)
	wantErr(t, "RenewLease CANCELLED", e.reqs.RenewLease(ctx, "r-1", "w1", time.Minute), store.ErrConflict)
	_, err = e.reqs.Complete(ctx, "r-1", "w1", json.RawMessage(`{}`))
	wantErr(t, "Complete CANCELLED", err, store.ErrConflict)
	_, err = e.reqs.Requeue(ctx, "r-1", "w1", store.RequestError{Code: "INTERNAL"}, 3)
	wantErr(t, "Requeue CANCELLED", err, store.ErrConflict)
	if got := wantStatus(t, e, "r-1", store.StatusCancelled); got.Progress != 20 {
		t.Errorf("Progress = %v, want the last accepted 20", got.Progress)
	}
	// Even with its lease long expired, a cancelled request is not reclaimed.
	e.clock.Advance(time.Hour)
	_, err = e.reqs.Claim(ctx, "r-1", "w2", time.Minute)
	wantErr(t, "Claim CANCELLED after lease expiry", err, store.ErrConflict)
}

func testMissingRequest(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.reqs.Claim(ctx, "nope", "w1", time.Minute)
	wantErr(t, "Claim", err, store.ErrNotFound)
	wantErr(t, "RenewLease", e.reqs.RenewLease(ctx, "nope", "w1", time.Minute), store.ErrNotFound)
	wantErr(t, "UpdateProgress", e.reqs.UpdateProgress(ctx, "nope", "w1", 1, ""), store.ErrNotFound)
	_, err = e.reqs.Complete(ctx, "nope", "w1", nil)
	wantErr(t, "Complete", err, store.ErrNotFound)
	_, err = e.reqs.Fail(ctx, "nope", "w1", store.RequestError{Code: "INTERNAL"})
	wantErr(t, "Fail", err, store.ErrNotFound)
	_, err = e.reqs.Requeue(ctx, "nope", "w1", store.RequestError{Code: "INTERNAL"}, 3)
	wantErr(t, "Requeue", err, store.ErrNotFound)
	_, err = e.reqs.Cancel(ctx, "nope")
	wantErr(t, "Cancel", err, store.ErrNotFound)
	// None of those created the record.
	_, err = e.reqs.GetRequest(ctx, "nope")
	wantErr(t, "GetRequest", err, store.ErrNotFound)
}

func testRequestTTL(t *testing.T, e *env) {
	ctx := t.Context()
	for _, id := range []string{"pending", "running"} {
		r := newRequest(id)
		r.TTL = e.clock.Now().Add(time.Minute).Unix()
		enqueue(t, e, r)
	}
	keep := newRequest("keep")
	keep.TTL = e.clock.Now().Add(time.Hour).Unix()
	enqueue(t, e, keep)
	claim(t, e, "running", "w1")
	e.clock.Advance(59 * time.Second)
	get(t, e, "pending")
	e.clock.Advance(time.Second) // TTL == now: expired
	for _, id := range []string{"pending", "running"} {
		_, err := e.reqs.GetRequest(ctx, id)
		wantErr(t, "GetRequest expired "+id, err, store.ErrNotFound)
		_, err = e.reqs.Cancel(ctx, id)
		wantErr(t, "Cancel expired "+id, err, store.ErrNotFound)
	}
	_, err := e.reqs.Claim(ctx, "pending", "w2", time.Minute)
	wantErr(t, "Claim expired", err, store.ErrNotFound)
	wantErr(t, "UpdateProgress expired", e.reqs.UpdateProgress(ctx, "running", "w1", 50, ""), store.ErrNotFound)
	_, err = e.reqs.Complete(ctx, "running", "w1", nil)
	wantErr(t, "Complete expired", err, store.ErrNotFound)
	for name, list := range map[string]func(context.Context, string, int, string) ([]*store.AsyncRequest, string, error){
		"ListRequestsByConnection": e.reqs.ListRequestsByConnection, "ListRequestsByUser": e.reqs.ListRequestsByUser,
	} {
		key := map[string]string{"ListRequestsByConnection": "conn-1", "ListRequestsByUser": "user-1"}[name]
		got := collect(t, name, list, key, 1)
		if len(got) != 1 || got[0] != "keep" {
			t.Errorf("%s = %q, want only the live request", name, got)
		}
	}
}

// collect pages through a list with the given page size and returns the
// request IDs in order, checking every page's size and the cursor chain.
func collect(t *testing.T, name string, list func(context.Context, string, int, string) ([]*store.AsyncRequest, string, error), key string, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s: more than 1000 pages; the cursor does not advance", name)
		}
		page, next, err := list(t.Context(), key, limit, cursor)
		wantErr(t, name, err, nil)
		if limit > 0 && len(page) > limit {
			t.Fatalf("%s: page of %d with limit %d", name, len(page), limit)
		}
		for _, r := range page {
			out = append(out, r.RequestID)
		}
		if next == "" {
			return out
		}
		if next == cursor {
			t.Fatalf("%s: cursor did not advance", name)
		}
		cursor = next
	}
}

func testListRequests(t *testing.T, e *env) {
	var byConn, byUser []string
	for i := range 11 {
		r := newRequest(fmt.Sprintf("r-%02d", 10-i)) // IDs sort opposite to creation order
		if i%2 == 1 {
			r.ConnectionID = "conn-2"
		} else {
			byConn = append(byConn, r.RequestID)
		}
		if i%3 == 2 {
			r.UserID = "user-2"
		} else {
			byUser = append(byUser, r.RequestID)
		}
		enqueue(t, e, r)
		e.clock.Advance(time.Millisecond)
	}
	for _, limit := range []int{1, 2, 3, 0, 100} {
		got := collect(t, "ListRequestsByConnection", e.reqs.ListRequestsByConnection, "conn-1", limit)
		if strings.Join(got, ",") != strings.Join(byConn, ",") {
			t.Errorf("ListRequestsByConnection(limit %d) = %q, want %q (oldest first)", limit, got, byConn)
		}
		got = collect(t, "ListRequestsByUser", e.reqs.ListRequestsByUser, "user-1", limit)
		if strings.Join(got, ",") != strings.Join(byUser, ",") {
			t.Errorf("ListRequestsByUser(limit %d) = %q, want %q (oldest first)", limit, got, byUser)
		}
	}
	// One page of everything: no cursor.
	page, next, err := e.reqs.ListRequestsByConnection(t.Context(), "conn-1", 100, "")
	wantErr(t, "ListRequestsByConnection", err, nil)
	if len(page) != len(byConn) || next != "" {
		t.Errorf("single page: %d requests, next %q; want %d and no cursor", len(page), next, len(byConn))
	}
	if len(page) > 0 && (page[0].Action != "generate_report" || len(page[0].Payload) == 0) {
		t.Errorf("listed request is incomplete: %+v", page[0])
	}
	// A cursor survives writes between pages: nothing listed twice or lost.
	page, next, err = e.reqs.ListRequestsByUser(t.Context(), "user-1", 2, "")
	wantErr(t, "ListRequestsByUser", err, nil)
	if len(page) != 2 || next == "" {
		t.Fatalf("first page: %d requests, next %q", len(page), next)
	}
	late := newRequest("r-late")
	enqueue(t, e, late)
	rest := []string{page[0].RequestID, page[1].RequestID}
	for next != "" {
		page, next, err = e.reqs.ListRequestsByUser(t.Context(), "user-1", 2, next)
		wantErr(t, "ListRequestsByUser next", err, nil)
		for _, r := range page {
			rest = append(rest, r.RequestID)
		}
	}
	if want := strings.Join(append(byUser, "r-late"), ","); strings.Join(rest, ",") != want {
		t.Errorf("pages across a write = %q, want %q", rest, want)
	}
	// Unknown keys give an empty page, not an error.
	page, next, err = e.reqs.ListRequestsByConnection(t.Context(), "conn-unknown", 10, "")
	wantErr(t, "ListRequestsByConnection unknown", err, nil)
	if len(page) != 0 || next != "" {
		t.Errorf("unknown connection: %d requests, next %q", len(page), next)
	}
}

func testListRequestsBadInput(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	_, _, err := e.reqs.ListRequestsByConnection(ctx, "", 10, "")
	wantErr(t, "ListRequestsByConnection empty", err, store.ErrInvalidInput)
	_, _, err = e.reqs.ListRequestsByUser(ctx, "", 10, "")
	wantErr(t, "ListRequestsByUser empty", err, store.ErrInvalidInput)
	for _, bad := range []string{"not a cursor!", "e30", "%%%"} {
		_, _, err = e.reqs.ListRequestsByConnection(ctx, "conn-1", 10, bad)
		wantErr(t, fmt.Sprintf("ListRequestsByConnection cursor %q", bad), err, store.ErrInvalidInput)
		_, _, err = e.reqs.ListRequestsByUser(ctx, "user-1", 10, bad)
		wantErr(t, fmt.Sprintf("ListRequestsByUser cursor %q", bad), err, store.ErrInvalidInput)
	}
}

func testRequestInvalidInput(t *testing.T, e *env) {
	ctx := t.Context()
	bad := map[string]*store.AsyncRequest{
		"nil":                nil,
		"empty request id":   {ConnectionID: "c"},
		"empty connection":   {RequestID: "r-x"},
		"invalid payload":    {RequestID: "r-x", ConnectionID: "c", Payload: json.RawMessage(`{"a":`)},
		"progress over 100":  {RequestID: "r-x", ConnectionID: "c", Progress: 101},
		"negative attempts":  {RequestID: "r-x", ConnectionID: "c", Attempts: -1},
		"invalid result":     {RequestID: "r-x", ConnectionID: "c", Result: json.RawMessage(`nope`)},
		"NaN progress value": {RequestID: "r-x", ConnectionID: "c", Progress: math.NaN()},
	}
	for name, r := range bad {
		wantErr(t, "Enqueue "+name, e.reqs.Enqueue(ctx, r), store.ErrInvalidInput)
	}
	_, err := e.reqs.GetRequest(ctx, "r-x")
	wantErr(t, "GetRequest after refused Enqueues", err, store.ErrNotFound)

	enqueue(t, e, newRequest("r-1"))
	_, err = e.reqs.GetRequest(ctx, "")
	wantErr(t, "GetRequest empty", err, store.ErrInvalidInput)
	_, err = e.reqs.Claim(ctx, "", "w", time.Minute)
	wantErr(t, "Claim empty id", err, store.ErrInvalidInput)
	_, err = e.reqs.Claim(ctx, "r-1", "", time.Minute)
	wantErr(t, "Claim empty owner", err, store.ErrInvalidInput)
	_, err = e.reqs.Claim(ctx, "r-1", "w", 0)
	wantErr(t, "Claim zero lease", err, store.ErrInvalidInput)
	wantStatus(t, e, "r-1", store.StatusPending)
	claim(t, e, "r-1", "w")
	wantErr(t, "RenewLease empty owner", e.reqs.RenewLease(ctx, "r-1", "", time.Minute), store.ErrInvalidInput)
	wantErr(t, "RenewLease negative", e.reqs.RenewLease(ctx, "r-1", "w", -time.Second), store.ErrInvalidInput)
	wantErr(t, "UpdateProgress empty id", e.reqs.UpdateProgress(ctx, "", "w", 1, ""), store.ErrInvalidInput)
	wantErr(t, "UpdateProgress empty owner", e.reqs.UpdateProgress(ctx, "r-1", "", 1, ""), store.ErrInvalidInput)
	_, err = e.reqs.Complete(ctx, "", "w", nil)
	wantErr(t, "Complete empty id", err, store.ErrInvalidInput)
	_, err = e.reqs.Fail(ctx, "r-1", "", store.RequestError{Code: "INTERNAL"})
	wantErr(t, "Fail empty owner", err, store.ErrInvalidInput)
	_, err = e.reqs.Requeue(ctx, "", "w", store.RequestError{Code: "INTERNAL"}, 3)
	wantErr(t, "Requeue empty id", err, store.ErrInvalidInput)
	_, err = e.reqs.Cancel(ctx, "")
	wantErr(t, "Cancel empty id", err, store.ErrInvalidInput)
	wantStatus(t, e, "r-1", store.StatusProcessing)
}

func testRequestTooLarge(t *testing.T, e *env) {
	ctx := t.Context()
	huge := func(n int) json.RawMessage { return json.RawMessage(`"` + strings.Repeat("x", n) + `"`) }

	r := newRequest("r-big")
	r.Payload = huge(store.MaxItemBytes + 1)
	wantErr(t, "Enqueue oversize payload", e.reqs.Enqueue(ctx, r), store.ErrTooLarge)
	_, err := e.reqs.GetRequest(ctx, "r-big")
	wantErr(t, "GetRequest after refused Enqueue", err, store.ErrNotFound)

	// 300 KB fits and round-trips byte for byte.
	r.Payload = huge(300 * 1024)
	enqueue(t, e, r)
	sameJSON(t, "300 KB payload", get(t, e, "r-big").Payload, r.Payload)
	claim(t, e, "r-big", "w")

	// The result alone fits, but with the payload the item would not.
	_, err = e.reqs.Complete(ctx, "r-big", "w", huge(200*1024))
	wantErr(t, "Complete pushing the item over", err, store.ErrTooLarge)
	_, err = e.reqs.Fail(ctx, "r-big", "w", store.RequestError{Code: "INTERNAL", Message: strings.Repeat("m", 200*1024)})
	wantErr(t, "Fail pushing the item over", err, store.ErrTooLarge)
	wantErr(t, "UpdateProgress pushing the item over",
		e.reqs.UpdateProgress(ctx, "r-big", "w", 10, strings.Repeat("m", 200*1024)), store.ErrTooLarge)
	got := wantStatus(t, e, "r-big", store.StatusProcessing)
	if len(got.Result) != 0 || got.Progress != 0 {
		t.Errorf("refused writes left traces: result %d bytes, progress %v", len(got.Result), got.Progress)
	}
	// The worker can still finish with a result that fits.
	done, err := e.reqs.Complete(ctx, "r-big", "w", huge(50*1024))
	wantErr(t, "Complete that fits", err, nil)
	sameJSON(t, "50 KB result", done.Result, huge(50*1024))

	enqueue(t, e, newRequest("r-2"))
	claim(t, e, "r-2", "w")
	_, err = e.reqs.Complete(ctx, "r-2", "w", huge(store.MaxItemBytes+1))
	wantErr(t, "Complete oversize result", err, store.ErrTooLarge)
	_, err = e.reqs.Requeue(ctx, "r-2", "w", store.RequestError{Code: "INTERNAL", Message: strings.Repeat("m", store.MaxItemBytes)}, 3)
	wantErr(t, "Requeue oversize error", err, store.ErrTooLarge)
	got = wantStatus(t, e, "r-2", store.StatusProcessing)
	if got.Attempts != 0 {
		t.Errorf("refused Requeue counted an attempt")
	}
}

func testRequestCancelledContext(t *testing.T, e *env) {
	enqueue(t, e, newRequest("r-1"))
	ctx := cancelledContext()
	wantErr(t, "Enqueue", e.reqs.Enqueue(ctx, newRequest("r-2")), context.Canceled)
	_, err := e.reqs.GetRequest(ctx, "r-1")
	wantErr(t, "GetRequest", err, context.Canceled)
	_, err = e.reqs.Claim(ctx, "r-1", "w", time.Minute)
	wantErr(t, "Claim", err, context.Canceled)
	_, err = e.reqs.Cancel(ctx, "r-1")
	wantErr(t, "Cancel", err, context.Canceled)
	_, _, err = e.reqs.ListRequestsByUser(ctx, "user-1", 10, "")
	wantErr(t, "ListRequestsByUser", err, context.Canceled)
	wantStatus(t, e, "r-1", store.StatusPending)
	_, err = e.reqs.GetRequest(t.Context(), "r-2")
	wantErr(t, "GetRequest r-2", err, store.ErrNotFound)
}
