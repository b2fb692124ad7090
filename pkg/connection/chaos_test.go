package connection_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
)

// TestChaosBroadcast broadcasts to 10,000 connections through the real SDK
// while the server fails 20 % of them with transient 5xx, throws 429
// bursts at whoever comes next, has 5 % gone and answers with random
// latency; every fault happens before delivery. Every live ID must be
// delivered exactly once or reported failed, none twice; gone ones
// reported stale and removed; no goroutine left (TestMain's goleak).
func TestChaosBroadcast(t *testing.T) {
	const n = 10000
	// Pacing off: these 429 bursts come after every 500 requests at any
	// rate, which no pacing can avoid, and the adaptive rate would fall
	// and fall. TestPacing* cover throttling that answers to the rate.
	f := newFixture(t, connection.WithClock(realClock{}), connection.WithBroadcastWorkers(16), connection.WithLimiter(nil))
	r := rand.New(rand.NewPCG(7, 7))
	all := make([]string, n)
	gone := map[string]bool{}
	for i := range all {
		all[i] = fmt.Sprintf("chaos-%05d-%x=", i, r.Uint32())
		if err := f.store.Save(context.Background(), &store.Connection{ConnectionID: all[i], UserID: "u"}); err != nil {
			t.Fatal(err)
		}
		switch p := r.Float64(); {
		case p < 0.05:
			gone[all[i]] = true
			f.srv.Disconnect(all[i])
		case p < 0.25:
			// Transient: one to three server errors, then fine.
			script := []int{500, 502, 503}[:1+r.IntN(3)]
			f.srv.Script(all[i], script...)
		}
	}
	f.srv.SetLatency(func(string) time.Duration {
		return time.Duration(rand.IntN(300)) * time.Microsecond
	})

	// 429 bursts hit whichever requests come next: 20 after every 500.
	f.srv.ThrottleBursts(500, 20)
	err := f.m.Broadcast(context.Background(), all, map[string]string{"event": "chaos"})

	var be *connection.BroadcastError
	if err != nil && !errors.As(err, &be) {
		t.Fatalf("Broadcast = %v", err)
	}
	failed := map[string]error{}
	if be != nil {
		failed = be.Failed
		if be.Total != n {
			t.Errorf("Total = %d", be.Total)
		}
	}
	received := f.srv.ReceivedBy()
	var delivered, reportedLive int
	for _, id := range all {
		got, e := received[id], failed[id]
		switch {
		case got > 1:
			t.Errorf("%s delivered %d times", id, got)
		case gone[id]:
			if got != 0 || !errors.Is(e, connection.ErrConnectionStale) {
				t.Errorf("gone %s: delivered %d, err %v", id, got, e)
			}
			if f.exists(t, id) {
				t.Errorf("gone %s still stored", id)
			}
		case got == 1:
			delivered++
			if e != nil {
				t.Errorf("%s delivered but reported %v", id, e)
			}
		default:
			reportedLive++
			if e == nil {
				t.Errorf("%s neither delivered nor reported", id)
			}
			if errors.Is(e, connection.ErrConnectionStale) {
				t.Errorf("live %s reported stale", id)
			}
			if !f.exists(t, id) {
				t.Errorf("live %s removed", id)
			}
		}
	}
	if delivered < n*80/100 {
		t.Errorf("only %d of %d delivered", delivered, n)
	}
	s := f.m.Stats()
	if s.SendsTotal != n || s.SendFailuresTotal != uint64(len(failed)) || s.RetriesTotal == 0 {
		t.Errorf("stats: sends %d, failures %d (reported %d), retries %d", s.SendsTotal, s.SendFailuresTotal, len(failed), s.RetriesTotal)
	}
	if s.ErrorsByType["gone"] != uint64(len(gone)) {
		t.Errorf("gone count %d, want %d", s.ErrorsByType["gone"], len(gone))
	}
	t.Logf("%d delivered, %d gone, %d live reported failed, %d retries, %d attempts",
		delivered, len(gone), reportedLive, s.RetriesTotal, f.srv.TotalAttempts())
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
