package streamer_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestE2ESyncEchoAndValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		s := startStack(t, newStores)
		c := s.dial(t, e2eToken(t, "alice", "acme"))

		w := c.roundTrip(t, `{"v":1,"type":"request","id":"e1","action":"echo","payload":{"text":"hello"}}`)
		if w.Type != "response" || w.RequestID != "e1" || w.V != 1 {
			t.Fatalf("echo reply %+v", w)
		}
		var out echoOut
		if err := json.Unmarshal(w.Data, &out); err != nil || out != (echoOut{Text: "hello", UserID: "alice", Tenant: "acme"}) {
			t.Fatalf("echo data %s (%v)", w.Data, err)
		}
		for body, code := range map[string]string{
			`{"type":"request","id":"b1",`:                                "INVALID_MESSAGE",
			`not json at all`:                                             "INVALID_MESSAGE",
			`{"type":"request","id":"u1","action":"no-such-action"}`:      "UNKNOWN_ACTION",
			`{"type":"teleport","id":"t1"}`:                               "INVALID_MESSAGE",
			`{"type":"request","action":"echo"}`:                          "INVALID_MESSAGE",
			`{"type":"resume","request_id":"r-doesnotexist"}`:             "NOT_FOUND",
			`{"type":"request","id":"x","action":"echo","payload":[1,2]}`: "INVALID_MESSAGE",
		} {
			if w := c.roundTrip(t, body); w.Type != "error" || w.Code != code {
				t.Errorf("%s: reply %+v, want %s", body, w, code)
			}
		}
		if w := c.roundTrip(t, `{"type":"ping"}`); w.Type != "pong" {
			t.Fatalf("ping reply %+v", w)
		}
		// The socket stayed open through every refusal.
		if w := c.roundTrip(t, `{"type":"request","id":"e2","action":"echo","payload":{"text":"again"}}`); w.Type != "response" {
			t.Fatalf("after errors: %+v", w)
		}
	})
}

func TestE2ESpoofedIdentityIsIgnored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		s := startStack(t, newStores)
		c := s.dial(t, e2eToken(t, "alice", "acme")+"&user_id=mallory&tenant_id=evil")
		w := c.roundTrip(t, `{"type":"request","id":"s1","action":"echo","user_id":"mallory","tenant_id":"evil","payload":{"text":"x","user_id":"mallory"}}`)
		var out echoOut
		_ = json.Unmarshal(w.Data, &out)
		if out.UserID != "alice" || out.Tenant != "acme" {
			t.Fatalf("sync identity %+v", out)
		}
		ack := c.roundTrip(t, `{"type":"request","id":"s2","action":"report","user_id":"mallory","payload":{"steps":1,"user_id":"mallory"}}`)
		if ack.Type != "ack" {
			t.Fatalf("ack %+v", ack)
		}
		done := c.until(t, isTypeW("complete"))
		if res := string(done[len(done)-1].Result); res != `{"steps":1,"user":"alice"}` {
			t.Fatalf("async result %s", res)
		}
		got, err := s.requests.GetRequest(t.Context(), ack.RequestID)
		if err != nil || got.UserID != "alice" || got.TenantID != "acme" {
			t.Fatalf("stored request %+v %v", got, err)
		}
	})
}

func TestE2EAsyncReportStreamsOrderedProgressThenComplete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		s := startStack(t, newStores)
		c := s.dial(t, e2eToken(t, "alice", "acme"))
		ack := c.roundTrip(t, `{"type":"request","id":"rep-1","action":"report","payload":{"steps":20,"delay_ms":10}}`)
		if ack.Type != "ack" || ack.ID != "rep-1" || ack.RequestID == "" {
			t.Fatalf("ack %+v", ack)
		}
		msgs := c.until(t, isTypeW("complete"))
		last := msgs[len(msgs)-1]
		if last.RequestID != ack.RequestID || string(last.Result) != `{"steps":20,"user":"alice"}` {
			t.Fatalf("complete %+v", last)
		}
		progress := msgs[:len(msgs)-1]
		if len(progress) < 2 {
			t.Fatalf("only %d progress messages: %+v", len(progress), msgs)
		}
		prev := -1.0
		for _, m := range progress {
			if m.Type != "progress" || m.RequestID != ack.RequestID || m.Percentage < prev {
				t.Fatalf("progress out of order: %+v", msgs)
			}
			prev = m.Percentage
		}
		if prev != 100 {
			t.Fatalf("last progress %v before complete, want 100", prev)
		}
		got, _ := s.requests.GetRequest(t.Context(), ack.RequestID)
		if got.Status != store.StatusCompleted || got.Progress != 100 {
			t.Fatalf("stored %+v", got)
		}
	})
}

func TestE2ECancel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		s := startStack(t, newStores, streamer.WithLease(600*time.Millisecond))
		c := s.dial(t, e2eToken(t, "alice", "acme"))
		ack := c.roundTrip(t, `{"type":"request","id":"long","action":"report","payload":{"steps":1000,"delay_ms":20}}`)
		c.until(t, isTypeW("progress"))
		other := s.dial(t, e2eToken(t, "bob", "acme"))
		if w := other.roundTrip(t, `{"type":"cancel","request_id":"`+ack.RequestID+`"}`); w.Code != "NOT_FOUND" {
			t.Fatalf("bob cancelled alice's request: %+v", w)
		}
		c.send(t, `{"type":"cancel","request_id":"`+ack.RequestID+`"}`)
		msgs := c.until(t, func(w wire) bool { return w.Type == "error" })
		if w := msgs[len(msgs)-1]; w.Code != "CANCELLED" || w.RequestID != ack.RequestID {
			t.Fatalf("cancel reply %+v", w)
		}
		// The handler, running in the processor, sees its context cancelled
		// through the store.
		deadline := time.Now().Add(30 * time.Second)
		for s.cancelled.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("handler never saw the cancellation")
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, w := range c.flush(t) {
			if w.Type == "complete" {
				t.Fatalf("complete after cancel: %+v", w)
			}
		}
		if got, _ := s.requests.GetRequest(t.Context(), ack.RequestID); got.Status != store.StatusCancelled {
			t.Fatalf("status %s", got.Status)
		}
	})
}

func TestE2EDisconnectMidRequestThenResume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		s := startStack(t, newStores)
		token := e2eToken(t, "alice", "acme")
		c1 := s.dial(t, token)
		ack := c1.roundTrip(t, `{"type":"request","id":"survive","action":"report","payload":{"steps":30,"delay_ms":20}}`)
		c1.until(t, isTypeW("progress"))
		c1.drop()

		c2 := s.dial(t, token)
		// A resubmission of the same client id is recognised.
		if w := c2.roundTrip(t, `{"type":"request","id":"survive","action":"report","payload":{"steps":30,"delay_ms":20}}`); w.Type != "ack" || w.RequestID != ack.RequestID {
			// progress for the request may arrive first: look further.
			msgs := append([]wire{w}, c2.until(t, func(w wire) bool { return w.Type == "ack" })...)
			if last := msgs[len(msgs)-1]; last.RequestID != ack.RequestID {
				t.Fatalf("resubmission ack %+v", last)
			}
		}
		c2.send(t, `{"type":"resume","request_id":"`+ack.RequestID+`"}`)
		// Resume answers with the current state; the rest of the progress
		// and the result follow the user to the new connection.
		msgs := c2.until(t, func(w wire) bool { return w.Type == "complete" })
		if last := msgs[len(msgs)-1]; last.RequestID != ack.RequestID || string(last.Result) != `{"steps":30,"user":"alice"}` {
			t.Fatalf("complete %+v", last)
		}
		// Another user cannot resume it.
		if w := s.dial(t, e2eToken(t, "bob", "acme")).roundTrip(t, `{"type":"resume","request_id":"`+ack.RequestID+`"}`); w.Code != "NOT_FOUND" {
			t.Fatalf("bob resumed alice's request: %+v", w)
		}
		// After the end, resume returns the result.
		if w := c2.roundTrip(t, `{"type":"resume","request_id":"`+ack.RequestID+`"}`); w.Type != "complete" || string(w.Result) != `{"steps":30,"user":"alice"}` {
			t.Fatalf("resume after completion %+v", w)
		}
	})
}

func TestE2ERefusesBadTokensWith401(t *testing.T) {
	s := startStack(t, memoryStores)
	valid := jwt.MapClaims{"sub": "eve", "aud": e2eAudience, "exp": time.Now().Add(time.Hour).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, valid).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"no token":       "",
		"expired":        signE2E(t, with("exp", time.Now().Add(-time.Minute).Unix()), e2eSecret),
		"wrong key":      signE2E(t, valid, []byte("not-the-secret-not-the-secret-not-the")),
		"wrong audience": signE2E(t, with("aud", "someone-else"), e2eSecret),
		"alg none":       none,
		"garbage":        "abc.def.ghi",
	} {
		_, err := s.tryDial(t.Context(), tok)
		var de *dialError
		if !errors.As(err, &de) || de.status != http.StatusUnauthorized {
			t.Errorf("%s: dial error %v, want HTTP 401", name, err)
		}
	}
	if list, _ := s.conns.ListByUser(t.Context(), "eve"); len(list) != 0 {
		t.Fatalf("refused connections were stored: %d", len(list))
	}
	// And a good token still gets in.
	s.dial(t, signE2E(t, valid, e2eSecret))
}

func memoryStores(testing.TB) (store.ConnectionStore, store.RequestStore) {
	st := memory.New()
	return st, st
}

func TestE2EManyClientsLoseAndDuplicateNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, newStores func(testing.TB) (store.ConnectionStore, store.RequestStore)) {
		const clients, perClient = 50, 20
		s := startStack(t, newStores, streamer.WithWorkers(16))
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			user := fmt.Sprintf("user-%d", i)
			c := s.dial(t, e2eToken(t, user, "acme"))
			wg.Go(func() {
				if err := runClient(t, c, user, perClient); err != nil {
					errs <- fmt.Errorf("%s: %w", user, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Each async request ran its handler exactly once: a duplicate run
		// whose complete arrived after the client stopped counting would
		// show here.
		runs := s.reportRuns()
		if len(runs) != clients*perClient/2 {
			t.Errorf("%d async requests ran, want %d", len(runs), clients*perClient/2)
		}
		for id, n := range runs {
			if n != 1 {
				t.Errorf("request %s ran %d times", id, n)
			}
		}
	})
}

// runClient sends n requests at once, alternating sync echo and async
// report, and checks each gets exactly one final answer.
func runClient(t *testing.T, c *wsClient, user string, n int) error {
	for j := range n {
		if j%2 == 0 {
			c.send(t, fmt.Sprintf(`{"type":"request","id":"q%d","action":"echo","payload":{"text":"%s-%d"}}`, j, user, j))
		} else {
			c.send(t, fmt.Sprintf(`{"type":"request","id":"q%d","action":"report","payload":{"steps":3}}`, j))
		}
	}
	responses := map[string]int{} // client id → count
	acks := map[string]string{}   // server id → client id
	completes := map[string]int{} // server id → count
	pending := n
	// A liveness bound, not a speed claim: it leaves room for the
	// pool's redeliveries of a final whose send failed (about a minute
	// in all) on a machine so loaded that this test alone takes most of
	// a minute against DynamoDB. A lost answer never arrives.
	deadline := time.After(2 * time.Minute)
	for pending > 0 {
		var w wire
		select {
		case m, ok := <-c.in:
			if !ok {
				return errors.New("connection closed")
			}
			w = m
		case <-deadline:
			return fmt.Errorf("%d requests unanswered", pending)
		}
		switch w.Type {
		case "response":
			responses[w.RequestID]++
			var out echoOut
			if err := json.Unmarshal(w.Data, &out); err != nil || out.UserID != user || out.Text != user+"-"+w.RequestID[1:] {
				return fmt.Errorf("bad response %+v", w)
			}
			pending--
		case "ack":
			acks[w.RequestID] = w.ID
		case "complete":
			completes[w.RequestID]++
			if string(w.Result) != `{"steps":3,"user":"`+user+`"}` {
				return fmt.Errorf("bad result %s", w.Result)
			}
			pending--
		case "progress":
		default:
			return fmt.Errorf("unexpected %+v", w)
		}
	}
	// Anything but the pong after the last answer is a duplicate: the
	// pong is sent after every message already queued for this client.
	c.send(t, `{"type":"ping"}`)
	for pong := false; !pong; {
		select {
		case w, ok := <-c.in:
			if !ok {
				return errors.New("connection closed")
			}
			if pong = w.Type == "pong"; !pong {
				return fmt.Errorf("after every request was answered: %+v", w)
			}
		case <-deadline:
			return errors.New("no pong")
		}
	}
	if len(responses) != n/2 || len(acks) != n/2 || len(completes) != n/2 {
		return fmt.Errorf("%d responses, %d acks, %d completes", len(responses), len(acks), len(completes))
	}
	for id, k := range responses {
		if k != 1 {
			return fmt.Errorf("response %s delivered %d times", id, k)
		}
	}
	for id, k := range completes {
		if k != 1 || acks[id] == "" {
			return fmt.Errorf("complete %s delivered %d times (acked as %q)", id, k, acks[id])
		}
	}
	return nil
}
