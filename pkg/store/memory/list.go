package memory

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
)

// cursor is the position after which the next page starts: the sort key
// (CreatedAt, RequestID) of the last request returned. It is opaque to
// callers (base64 of JSON) and stable even if requests are added meanwhile.
// It names its list (List, Key) so that, as in package dynamo, a cursor
// passed to another list is refused instead of silently skipping
// requests.
type cursor struct {
	List      string    `json:"l"`
	Key       string    `json:"k,omitempty"`
	CreatedAt time.Time `json:"c"`
	RequestID string    `json:"r"`
}

func encodeCursor(list, key string, r *store.AsyncRequest) string {
	b, _ := json.Marshal(cursor{List: list, Key: key, CreatedAt: r.CreatedAt, RequestID: r.RequestID}) // cannot fail: plain fields
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, list, key string) (cursor, bool) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.RequestID == "" || c.List != list || c.Key != key {
		return cursor{}, false
	}
	return c, true
}

func compareRequests(a, b *store.AsyncRequest) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.RequestID, b.RequestID)
}

// ListRequestsByConnection returns one page of the connection's live
// requests, oldest first.
func (s *Store) ListRequestsByConnection(ctx context.Context, connectionID string, limit int, cur string) ([]*store.AsyncRequest, string, error) {
	return s.listRequests(ctx, "list requests by connection", connectionID, limit, cur,
		func(r *store.AsyncRequest) string { return r.ConnectionID })
}

// ListRequestsByUser returns one page of the user's live requests, oldest
// first.
func (s *Store) ListRequestsByUser(ctx context.Context, userID string, limit int, cur string) ([]*store.AsyncRequest, string, error) {
	return s.listRequests(ctx, "list requests by user", userID, limit, cur,
		func(r *store.AsyncRequest) string { return r.UserID })
}

// ListStalled returns one page of the live requests that are stalled at
// the store's clock (see store.AsyncRequest.Stalled), oldest first. It
// looks at every request under the lock: fine for the one process that
// `streamer dev` is.
func (s *Store) ListStalled(ctx context.Context, pendingBefore time.Time, limit int, cur string) ([]*store.AsyncRequest, string, error) {
	const op = "list stalled requests"
	if err := checkCtx(ctx, op); err != nil {
		return nil, "", err
	}
	now := s.clock()
	return s.page(op, "", limit, cur, func(r *store.AsyncRequest) bool { return r.Stalled(now, pendingBefore) })
}

func (s *Store) listRequests(ctx context.Context, op, key string, limit int, cur string, field func(*store.AsyncRequest) string) ([]*store.AsyncRequest, string, error) {
	if err := checkCtx(ctx, op); err != nil {
		return nil, "", err
	}
	if key == "" {
		return nil, "", invalid(op, "", "empty key")
	}
	now := s.clock()
	return s.page(op, key, limit, cur, func(r *store.AsyncRequest) bool { return field(r) == key && !r.Expired(now) })
}

// page returns one page, in (CreatedAt, RequestID) order, of the requests
// that match and sort after the cursor. op and key name the list, in
// errors and in its cursors.
func (s *Store) page(op, key string, limit int, cur string, match func(*store.AsyncRequest) bool) ([]*store.AsyncRequest, string, error) {
	var after *store.AsyncRequest
	if cur != "" {
		c, ok := decodeCursor(cur, op, key)
		if !ok {
			return nil, "", invalid(op, key, "malformed cursor")
		}
		after = &store.AsyncRequest{CreatedAt: c.CreatedAt, RequestID: c.RequestID}
	}
	if limit <= 0 {
		limit = s.pageSize
	}
	var all []*store.AsyncRequest
	s.mu.Lock()
	for _, r := range s.reqs {
		if match(r) && (after == nil || compareRequests(r, after) > 0) {
			all = append(all, r)
		}
	}
	slices.SortFunc(all, compareRequests)
	page := make([]*store.AsyncRequest, 0, min(limit, len(all)))
	for _, r := range all[:min(limit, len(all))] {
		page = append(page, cloneRequest(r))
	}
	s.mu.Unlock()
	next := ""
	if len(all) > limit {
		next = encodeCursor(op, key, page[len(page)-1])
	}
	return page, next, nil
}
