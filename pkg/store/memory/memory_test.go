package memory_test

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) storetest.Stores {
		s := memory.New(memory.WithClock(now), memory.WithPageSize(2))
		return storetest.Stores{Connections: s, Requests: s}
	})
}

// TestSweepsExpired checks that expired records do not pile up in a
// long-running process: after enough inserts, requests whose TTL passed are
// gone from memory, not only hidden from reads.
func TestSweepsExpired(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := memory.New(memory.WithClock(func() time.Time { return now }))
	ctx := t.Context()
	for i := range 1000 {
		r := &store.AsyncRequest{RequestID: fmt.Sprintf("old-%d", i), ConnectionID: "c", TTL: now.Add(time.Minute).Unix()}
		if err := s.Enqueue(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Hour)
	for i := range 1100 {
		if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: fmt.Sprintf("new-%d", i), ConnectionID: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := memory.Len(s); n != 1100 {
		t.Errorf("store holds %d requests, want the 1100 live ones", n)
	}
}
