package memory_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// BenchmarkLifecycle is one async request's store traffic in the local
// runtime: Enqueue, Claim, three progress updates, Complete.
func BenchmarkLifecycle(b *testing.B) {
	ctx := context.Background()
	s := memory.New()
	payload := json.RawMessage(`{"report":"monthly","month":"2026-11"}`)
	i := 0
	for b.Loop() {
		i++
		id := "r-" + strconv.Itoa(i)
		if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: id, ConnectionID: "c-1", UserID: "u-1", Payload: payload}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Claim(ctx, id, "w", time.Minute); err != nil {
			b.Fatal(err)
		}
		for p := range 3 {
			if err := s.UpdateProgress(ctx, id, "w", float64(25*(p+1)), "step"); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.Complete(ctx, id, "w", json.RawMessage(`{}`)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimParallel measures claims of distinct requests under
// contention for the store's one lock.
func BenchmarkClaimParallel(b *testing.B) {
	ctx := context.Background()
	s := memory.New()
	ids := make(chan string, b.N)
	for i := range b.N {
		id := "r-" + strconv.Itoa(i)
		if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: id, ConnectionID: "c-1"}); err != nil {
			b.Fatal(err)
		}
		ids <- id
	}
	close(ids)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Claim(ctx, <-ids, "w", time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
