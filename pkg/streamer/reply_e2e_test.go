package streamer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// TestE2ERepliesNeedNoConnectionRecord: the store loses the connection's
// record (a wiped or restored table) while the client's request runs. The
// client still gets every answer, through the endpoint its messages' events
// name: pong, UNAUTHORIZED for what needs the user, NOT_FOUND for a
// request that does not exist, and for its own request the state, then
// the outcome once it has ended.
func TestE2ERepliesNeedNoConnectionRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		// No identity cache, so the router reads the record on every
		// message and finds it gone.
		s := startStackWith(t, newStores, []streamer.Option{streamer.WithIdentityCache(0, 0)})
		c := s.dial(t, e2eToken(t, "alice", "acme"))
		ack := c.roundTrip(t, `{"type":"request","id":"r1","action":"report","payload":{"steps":10,"delay_ms":30}}`)
		if ack.Type != "ack" {
			t.Fatalf("ack %+v", ack)
		}
		// Find the record of this connection and delete it.
		list, err := s.conns.ListByUser(t.Context(), "alice")
		if err != nil || len(list) != 1 {
			t.Fatalf("connections of alice: %v %v", list, err)
		}
		if err := s.conns.Delete(t.Context(), list[0].ConnectionID); err != nil {
			t.Fatal(err)
		}

		if w := c.flush(t); w[len(w)-1].Type != "pong" {
			t.Fatalf("no pong: %+v", w)
		}
		c.send(t, `{"type":"request","id":"e","action":"echo","payload":{"text":"hi"}}`)
		if w := c.until(t, func(w wire) bool { return w.Type == "error" }); w[len(w)-1].Code != "UNAUTHORIZED" || w[len(w)-1].RequestID != "e" {
			t.Fatalf("echo without a record: %+v", w)
		}
		c.send(t, `{"type":"resume","request_id":"r-nope"}`)
		if w := c.until(t, func(w wire) bool { return w.Type == "error" }); w[len(w)-1].Code != "NOT_FOUND" {
			t.Fatalf("resume of an unknown request: %+v", w)
		}
		start := time.Now()
		c.send(t, `{"type":"resume","request_id":"`+ack.RequestID+`"}`)
		c.until(t, func(w wire) bool {
			return w.RequestID == ack.RequestID && (w.Type == "progress" || w.Type == "complete")
		})
		if time.Since(start) > 5*time.Second {
			t.Fatalf("resume answered after %s", time.Since(start))
		}
		// The outcome: pushed if the record was found again, else the
		// answer to a resume once the request has ended.
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := s.requests.GetRequest(t.Context(), ack.RequestID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request did not end: %+v", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.send(t, `{"type":"resume","request_id":"`+ack.RequestID+`"}`)
		end := c.until(t, func(w wire) bool { return w.RequestID == ack.RequestID && w.Type == "complete" })
		if last := end[len(end)-1]; string(last.Result) != `{"steps":10,"user":"alice"}` {
			t.Fatalf("complete %+v", last)
		}
	})
}

// firstFinalTimesOut is the Manager, except that the first send of each
// request's final message times out before it is posted, as sends do on a
// machine so loaded that the store read and the POST outlast the budget.
type firstFinalTimesOut struct {
	*connection.Manager
	mu       sync.Mutex
	timedOut map[string]bool // request id → its final's send timed out
	timeouts atomic.Int32
}

func (s *firstFinalTimesOut) Send(ctx context.Context, connectionID string, message any) error {
	var id string
	switch m := message.(type) {
	case protocol.Complete:
		id = m.RequestID
	case protocol.Error:
		id = m.RequestID
	}
	if id != "" {
		s.mu.Lock()
		first := !s.timedOut[id]
		s.timedOut[id] = true
		s.mu.Unlock()
		if first {
			s.timeouts.Add(1)
			return fmt.Errorf("connection: send to %s: %w", connectionID, context.DeadlineExceeded)
		}
	}
	return s.Manager.Send(ctx, connectionID, message)
}

// A client whose socket stays open gets the result of its request even
// when the send of the final message timed out: it never resumes, so
// nothing but the server sending again would tell it.
func TestE2EFinalWhoseSendTimedOutReachesTheConnectedClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		var sender *firstFinalTimesOut
		s := startStackSending(t, newStores, nil, func(m *connection.Manager) streamer.Sender {
			sender = &firstFinalTimesOut{Manager: m, timedOut: map[string]bool{}}
			return sender
		}, fastProgress)
		c := s.dial(t, e2eToken(t, "alice", "acme"))
		ack := c.roundTrip(t, `{"type":"request","id":"r1","action":"report","payload":{"steps":2}}`)
		if ack.Type != "ack" {
			t.Fatalf("ack %+v", ack)
		}
		msgs := c.until(t, isTypeW("complete"))
		if last := msgs[len(msgs)-1]; last.RequestID != ack.RequestID || string(last.Result) != `{"steps":2,"user":"alice"}` {
			t.Fatalf("complete %+v", last)
		}
		if n := sender.timeouts.Load(); n != 1 {
			t.Fatalf("%d sends timed out, want 1", n)
		}
		for _, w := range c.flush(t) {
			if w.Type != "pong" {
				t.Fatalf("after the complete: %+v", w)
			}
		}
	})
}
