package storetest

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

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
		"negative ttl":       {RequestID: "r-x", ConnectionID: "c", TTL: -1},
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
