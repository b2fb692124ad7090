package channel_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
)

// MaxBytesPerSubscription is the floor for the memory store.
const maxBytesPerSubscription = 300

// subscriptionBytes subscribes conns connections to perConn channels each
// (of 1,000) and returns the heap the store retains per subscription,
// counting the ids and user names it keeps (allocated inside the measured
// window, as a server's requests allocate them).
func subscriptionBytes(tb testing.TB, conns, perConn int) float64 {
	st := channel.NewMemoryStore()
	exp := time.Now().Add(time.Hour)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for c := range conns {
		id := fmt.Sprintf("%015d=", c) // API Gateway ids are 16 bytes
		user := fmt.Sprintf("user-%06d", c)
		for j := range perConn {
			key := channel.Key("tenant-1", fmt.Sprintf("chat:room-%03d", (c+j*7)%1000))
			if _, err := st.Subscribe(tb.Context(), key, channel.Subscriber{ConnectionID: id, UserID: user}, exp); err != nil {
				tb.Fatal(err)
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(st)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(conns*perConn)
}

// TestMemoryPerSubscription holds the memory store to the floor:
// at most 300 bytes of heap per subscription, whether each connection has
// one subscription (its id and index are then not shared) or ten.
func TestMemoryPerSubscription(t *testing.T) {
	for _, perConn := range []int{1, 10} {
		got := subscriptionBytes(t, 100_000/perConn, perConn)
		t.Logf("%d subscription(s) per connection: %.0f B/subscription", perConn, got)
		if got > maxBytesPerSubscription {
			t.Errorf("%d per connection: %.0f bytes per subscription, floor %d", perConn, got, maxBytesPerSubscription)
		}
	}
}

// BenchmarkMemoryStoreSubscription reports the memory store's bytes per
// subscription (B/sub) for 100,000 subscriptions.
//
//	go test -run '^$' -bench MemoryStoreSubscription -benchtime 3x ./pkg/channel/
func BenchmarkMemoryStoreSubscription(b *testing.B) {
	for _, perConn := range []int{1, 10} {
		b.Run(fmt.Sprintf("per-conn=%d", perConn), func(b *testing.B) {
			var total float64
			for b.Loop() {
				total += subscriptionBytes(b, 100_000/perConn, perConn)
			}
			b.ReportMetric(total/float64(b.N), "B/sub")
		})
	}
}
