package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
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
	{"TakeOverRace100", testTakeOverRace},
	{"CancelCompleteRace", testCancelCompleteRace},
	{"LeaseExpiryTakeOver", testLeaseTakeOver},
	{"RenewLease", testRenewLease},
	{"UpdateProgress", testUpdateProgress},
	{"Complete", testComplete},
	{"Fail", testFail},
	{"RequeueUpToMax", testRequeue},
	{"Rebind", testRebind},
	{"Cancel", testCancel},
	{"CancelStopsRunningHandler", testCancelRunning},
	{"MissingRequest", testMissingRequest},
	{"TTLHidesExpired", testRequestTTL},
	{"ListOrderAndPaging", testListRequests},
	{"ListBadInput", testListRequestsBadInput},
	{"ListStalled", testListStalled},
	{"ListStalledPaging", testListStalledPaging},
	{"ListStalledBadInput", testListStalledBadInput},
	{"PermissionsRoundTrip", testPermissionsRoundTrip},
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
		Permissions:     []string{"reports:run", "reports:read"},
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
		if want == store.StatusPending {
			// The next attempt starts from nothing: no percentage of this
			// one is reported as the next one's.
			for what, r := range map[string]*store.AsyncRequest{"returned": got, "stored": get(t, e, "r-1")} {
				if r.Progress != 0 || r.ProgressMessage != "" {
					t.Fatalf("attempt %d %s: requeued with progress %g %q, want 0 and none", attempt, what, r.Progress, r.ProgressMessage)
				}
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

// testPermissionsRoundTrip: the permissions a request was queued with
// reach whoever runs it, unchanged, and count towards the item limit.
func testPermissionsRoundTrip(t *testing.T, e *env) {
	ctx := t.Context()
	want := []string{"reports:run", "reports:read"}
	r := newRequest("r-1")
	enqueue(t, e, r)
	r.Permissions[0] = "admin" // the caller's slice is not the stored one
	got := get(t, e, "r-1")
	if !slices.Equal(got.Permissions, want) {
		t.Fatalf("GetRequest Permissions = %q, want %q", got.Permissions, want)
	}
	got.Permissions[0] = "admin"
	claimed := claim(t, e, "r-1", "w1")
	if !slices.Equal(claimed.Permissions, want) {
		t.Errorf("Claim Permissions = %q, want %q", claimed.Permissions, want)
	}
	page, _, err := e.reqs.ListRequestsByUser(ctx, "user-1", 0, "")
	wantErr(t, "ListRequestsByUser", err, nil)
	if len(page) != 1 || !slices.Equal(page[0].Permissions, want) {
		t.Errorf("listed Permissions = %+v, want %q", page, want)
	}
	done, err := e.reqs.Complete(ctx, "r-1", "w1", json.RawMessage(`1`))
	wantErr(t, "Complete", err, nil)
	if !slices.Equal(done.Permissions, want) {
		t.Errorf("Complete Permissions = %q, want %q", done.Permissions, want)
	}

	none := newRequest("r-2")
	none.Permissions = nil
	enqueue(t, e, none)
	if got := get(t, e, "r-2"); len(got.Permissions) != 0 {
		t.Errorf("request queued without permissions came back with %q", got.Permissions)
	}

	big := newRequest("r-big")
	big.Permissions = make([]string, 1000)
	for i := range big.Permissions {
		big.Permissions[i] = fmt.Sprintf("%04d:%s", i, strings.Repeat("p", 500))
	}
	wantErr(t, "Enqueue with 500 KB of permissions", e.reqs.Enqueue(ctx, big), store.ErrTooLarge)
	_, err = e.reqs.GetRequest(ctx, "r-big")
	wantErr(t, "GetRequest after refused Enqueue", err, store.ErrNotFound)
}

// testRebind: Rebind moves a request to another connection, in every
// status, and changes nothing else; a missing request is ErrNotFound.
func testRebind(t *testing.T, e *env) {
	ctx := t.Context()
	enqueue(t, e, newRequest("r-1"))
	before := get(t, e, "r-1")
	e.clock.Advance(time.Second)
	wantErr(t, "Rebind", e.reqs.Rebind(ctx, "r-1", "conn-2"), nil)
	got := get(t, e, "r-1")
	if got.ConnectionID != "conn-2" || got.Status != before.Status || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("after Rebind: connection %q status %s updated %s; want conn-2, %s, %s", got.ConnectionID, got.Status, got.UpdatedAt, before.Status, before.UpdatedAt)
	}
	claim(t, e, "r-1", "w1")
	wantErr(t, "Rebind PROCESSING", e.reqs.Rebind(ctx, "r-1", "conn-3"), nil)
	done, err := e.reqs.Complete(ctx, "r-1", "w1", json.RawMessage(`1`))
	wantErr(t, "Complete", err, nil)
	if done.ConnectionID != "conn-3" {
		t.Errorf("Complete returned connection %q, want conn-3", done.ConnectionID)
	}
	wantErr(t, "Rebind COMPLETED", e.reqs.Rebind(ctx, "r-1", "conn-4"), nil)
	if got := get(t, e, "r-1"); got.ConnectionID != "conn-4" || got.Status != store.StatusCompleted {
		t.Errorf("after Rebind of a completed request: %q %s", got.ConnectionID, got.Status)
	}
	wantErr(t, "Rebind missing", e.reqs.Rebind(ctx, "r-missing", "conn-2"), store.ErrNotFound)
	wantErr(t, "Rebind without connection", e.reqs.Rebind(ctx, "r-1", ""), store.ErrInvalidInput)
}
