package storetest

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

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
	// math.MaxInt: a caller asking for everything gets everything.
	for _, limit := range []int{1, 2, 3, 0, 100, math.MaxInt} {
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
	// A cursor belongs to its list: passed to another list, or to the same
	// list for another key, it is refused rather than skipping requests.
	for i := range 3 {
		r := newRequest(fmt.Sprintf("r-%d", i+2))
		r.ConnectionID = "conn-2"
		enqueue(t, e, r)
		e.clock.Advance(time.Millisecond)
	}
	e.clock.Advance(time.Hour)
	_, connCursor, err := e.reqs.ListRequestsByConnection(ctx, "conn-2", 1, "")
	wantErr(t, "ListRequestsByConnection conn-2", err, nil)
	_, userCursor, err := e.reqs.ListRequestsByUser(ctx, "user-1", 1, "")
	wantErr(t, "ListRequestsByUser user-1", err, nil)
	_, stalledCursor, err := e.reqs.ListStalled(ctx, e.clock.Now(), 1, "")
	wantErr(t, "ListStalled", err, nil)
	if connCursor == "" || userCursor == "" || stalledCursor == "" {
		t.Fatalf("want a next cursor from every list: %q, %q, %q", connCursor, userCursor, stalledCursor)
	}
	_, _, err = e.reqs.ListRequestsByConnection(ctx, "conn-1", 1, connCursor)
	wantErr(t, "conn-2's cursor on conn-1's list", err, store.ErrInvalidInput)
	_, _, err = e.reqs.ListRequestsByUser(ctx, "user-1", 1, connCursor)
	wantErr(t, "connection cursor on the user list", err, store.ErrInvalidInput)
	_, _, err = e.reqs.ListRequestsByConnection(ctx, "conn-2", 1, userCursor)
	wantErr(t, "user cursor on the connection list", err, store.ErrInvalidInput)
	_, _, err = e.reqs.ListStalled(ctx, e.clock.Now(), 1, connCursor)
	wantErr(t, "connection cursor on ListStalled", err, store.ErrInvalidInput)
	_, _, err = e.reqs.ListRequestsByConnection(ctx, "conn-2", 1, stalledCursor)
	wantErr(t, "ListStalled cursor on the connection list", err, store.ErrInvalidInput)

	for _, bad := range []string{"not a cursor!", "e30", "%%%"} {
		_, _, err = e.reqs.ListRequestsByConnection(ctx, "conn-1", 10, bad)
		wantErr(t, fmt.Sprintf("ListRequestsByConnection cursor %q", bad), err, store.ErrInvalidInput)
		_, _, err = e.reqs.ListRequestsByUser(ctx, "user-1", 10, bad)
		wantErr(t, fmt.Sprintf("ListRequestsByUser cursor %q", bad), err, store.ErrInvalidInput)
	}
}
