package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// FuzzListCursor feeds arbitrary cursors to the request lists: a cursor is
// either accepted or refused with ErrInvalidInput, never a panic.
func FuzzListCursor(f *testing.F) {
	ctx := context.Background()
	s := memory.New(memory.WithPageSize(1))
	for _, id := range []string{"r-1", "r-2", "r-3"} {
		if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: id, ConnectionID: "c-1", UserID: "u-1"}); err != nil {
			f.Fatal(err)
		}
	}
	_, next, err := s.ListRequestsByConnection(ctx, "c-1", 1, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(next)
	f.Add("")
	f.Add("e30")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, cursor string) {
		page, _, err := s.ListRequestsByUser(ctx, "u-1", 2, cursor)
		if err != nil && !errors.Is(err, store.ErrInvalidInput) {
			t.Fatalf("cursor %q: %v", cursor, err)
		}
		if len(page) > 2 {
			t.Fatalf("page of %d with limit 2", len(page))
		}
	})
}
