package dynamo_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// BenchmarkStore measures each hot operation of the router and processor
// against the DynamoDB-API server (dynalite under make bench). Run with:
//
//	scripts/with-dynalite.sh go test -run='^$' -bench=. -benchmem ./pkg/store/dynamo
func BenchmarkStore(b *testing.B) {
	client := dynamotest.Client(b)
	prefix := dynamotest.Tables(b, client, "test")
	s := dynamo.New(client, dynamo.WithPrefix(prefix))
	payload := json.RawMessage(`{"report":"monthly","month":"2026-11","filters":{"region":"eu","tier":"gold"}}`)
	seq := 0
	newReq := func() *store.AsyncRequest {
		seq++
		return &store.AsyncRequest{
			RequestID: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), seq), ConnectionID: "c-1", UserID: "u-1",
			Action: "report", Payload: payload,
		}
	}
	perSecond := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	}
	conn := &store.Connection{ConnectionID: "c-1", UserID: "u-1", TenantID: "t-1", ConnectedAt: time.Now(), Permissions: []string{"read"}}

	b.Run("Save", func(b *testing.B) {
		for b.Loop() {
			if err := s.Save(b.Context(), conn); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Get(b.Context(), "c-1"); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("Enqueue", func(b *testing.B) {
		for b.Loop() {
			if err := s.Enqueue(b.Context(), newReq()); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("Claim", func(b *testing.B) {
		ids := make([]string, b.N)
		for i := range ids {
			r := newReq()
			if err := s.Enqueue(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			ids[i] = r.RequestID
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := s.Claim(b.Context(), ids[i], "w", time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("UpdateProgress", func(b *testing.B) {
		r := newReq()
		if err := s.Enqueue(b.Context(), r); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Claim(b.Context(), r.RequestID, "w", time.Hour); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			if err := s.UpdateProgress(b.Context(), r.RequestID, "w", float64(i%100), "working"); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	b.Run("Complete", func(b *testing.B) {
		ids := make([]string, b.N)
		for i := range ids {
			r := newReq()
			if err := s.Enqueue(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Claim(b.Context(), r.RequestID, "w", time.Hour); err != nil {
				b.Fatal(err)
			}
			ids[i] = r.RequestID
		}
		b.ResetTimer()
		for i := range b.N {
			if _, err := s.Complete(b.Context(), ids[i], "w", json.RawMessage(`{"rows":42}`)); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	// The whole async life of one request as the router and processor see
	// it: Enqueue, Claim, three progress updates, Complete (6 calls).
	b.Run("Lifecycle", func(b *testing.B) {
		for b.Loop() {
			r := newReq()
			if err := s.Enqueue(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Claim(b.Context(), r.RequestID, "w", time.Minute); err != nil {
				b.Fatal(err)
			}
			for p := range 3 {
				if err := s.UpdateProgress(b.Context(), r.RequestID, "w", float64(25*(p+1)), "step"); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := s.Complete(b.Context(), r.RequestID, "w", json.RawMessage(`{}`)); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b)
	})
	// A sweep's pass when nothing is stalled, over a table that by now
	// holds thousands of requests, PENDING (too young to count), running
	// and finished: 2×SweepShards Query calls that read nothing.
	b.Run("ListStalledIdle", func(b *testing.B) {
		for b.Loop() {
			page, _, err := s.ListStalled(b.Context(), time.Now().Add(-time.Minute), 100, "")
			if err != nil || len(page) != 0 {
				b.Fatalf("ListStalled: %d, %v", len(page), err)
			}
		}
		perSecond(b)
	})
	// One page of 100 stalled requests: seen by a store whose clock runs
	// an hour ahead, every PENDING request above is stalled.
	b.Run("ListStalledPage100", func(b *testing.B) {
		later := dynamo.New(client, dynamo.WithPrefix(prefix), dynamo.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
		for b.Loop() {
			page, _, err := later.ListStalled(b.Context(), time.Now(), 100, "")
			if err != nil || len(page) != 100 {
				b.Fatalf("ListStalled: %d, %v", len(page), err)
			}
		}
		perSecond(b)
	})
	// Concurrent claimers on distinct requests, as several processor
	// instances would be.
	b.Run("ClaimParallel", func(b *testing.B) {
		ids := make(chan string, b.N)
		for range b.N {
			r := newReq()
			if err := s.Enqueue(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			ids <- r.RequestID
		}
		close(ids)
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Claim(b.Context(), <-ids, "w", time.Minute); err != nil {
					b.Error(err)
					return
				}
			}
		})
		perSecond(b)
	})
}
