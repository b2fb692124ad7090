package streamer_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// End to end, as `streamer dev` runs: a real WebSocket client gets the
// outcome of its requests that no dispatch would ever have run — one whose
// worker died holding the lease, one that was stored but never queued —
// because the pool's periodic sweep finds them. Real clock, so the grace
// is zero and the dead worker's lease a millisecond; the test waits on
// the messages, not on time.
func TestE2ESweepDeliversStalledRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		s := startStack(t, newStores, streamer.WithSweepInterval(50*time.Millisecond), streamer.WithPendingGrace(0))
		c := s.dial(t, e2eToken(t, "alice", "acme"))
		c.flush(t) // $connect has stored the connection
		conns, err := s.conns.ListByUser(t.Context(), "alice")
		if err != nil || len(conns) != 1 {
			t.Fatalf("alice's connections: %v, %v", conns, err)
		}
		for _, id := range []string{"r-dead-worker", "r-never-queued"} {
			err := s.requests.Enqueue(t.Context(), &store.AsyncRequest{
				RequestID: id, ClientRequestID: id, ConnectionID: conns[0].ConnectionID, UserID: "alice", TenantID: "acme",
				Action: "report", Payload: json.RawMessage(`{"steps":2}`), TTL: time.Now().Add(time.Hour).Unix(),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.requests.Claim(t.Context(), "r-dead-worker", "crashed-worker", time.Millisecond); err != nil {
			t.Fatal(err)
		}
		done := map[string]wire{}
		for len(done) < 2 {
			w := c.next(t)
			if w.Type == "complete" || w.Type == "error" {
				done[w.RequestID] = w
			}
		}
		for _, id := range []string{"r-dead-worker", "r-never-queued"} {
			w := done[id]
			if w.Type != "complete" || string(w.Result) != `{"steps":2,"user":"alice"}` {
				t.Errorf("%s: final message %+v", id, w)
			}
			got, err := s.requests.GetRequest(t.Context(), id)
			if err != nil || got.Status != store.StatusCompleted {
				t.Errorf("%s: stored %+v, %v", id, got, err)
			}
		}
		if got, _ := s.requests.GetRequest(t.Context(), "r-dead-worker"); got.Attempts != 1 {
			t.Errorf("taken over from a dead worker: %d attempts, want 1", got.Attempts)
		}
	})
}
