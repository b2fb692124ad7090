package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// TestFanOutCoalesces: while the gateway holds the post of the first
// publication, 200 more are published; once it answers, each subscriber
// gets them all, in order, in a handful of posts of at most one frame
// each rather than one post per publication.
func TestFanOutCoalesces(t *testing.T) {
	w := newWire(t)
	svc := newService(t, channel.NewMemoryStore(), w)
	subscribe(t, svc, "a", "u1", "", "news")
	subscribe(t, svc, "b", "u2", "", "news")
	arrived, release := w.srv.Hold("a")
	defer release()
	if _, err := svc.Publish(t.Context(), "news", map[string]string{"text": "first"}); err != nil {
		t.Fatal(err)
	}
	<-arrived
	const more = 200
	for n := range more {
		if _, err := svc.Publish(t.Context(), "news", map[string]string{"text": strings.Repeat("x", 200), "n": fmt.Sprint(n)}); err != nil {
			t.Fatal(err)
		}
	}
	release()
	if err := svc.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		posts := w.srv.Received(id)
		if got := offsets(t, posts); !slices.Equal(got, seq(1, more+1)) {
			t.Errorf("%s received %v, want 1..%d", id, got, more+1)
		}
		// 200 publications of ~300 bytes take 2 frames of 32 KiB, after
		// the one held post.
		if len(posts) > 4 {
			t.Errorf("%s: %d posts for %d publications", id, len(posts), more+1)
		}
	}
}

// TestPublishersArePushedBack: with the queue full, a publisher that
// may not wait is refused with an *OverloadedError (OVERLOADED through the
// router's path), nothing stored and no offset taken; one that may wait
// gets its place when a round takes the queue; every acknowledged
// publication is delivered, in order.
func TestPublishersArePushedBack(t *testing.T) {
	for _, wait := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("wait=", wait), func(t *testing.T) {
			w := newWire(t)
			st := channel.NewMemoryStore()
			svc := newService(t, st, w, channel.WithQueueLength(4), channel.WithPublishWait(wait),
				channel.WithNamespace("room", channel.Namespace{ClientPublish: true}))
			subscribe(t, svc, "a", "u1", "", "room:1")
			arrived, release := w.srv.Hold("a")
			defer release()
			publish := func(n int) error {
				_, err := svc.ServeChannel(t.Context(), &streamer.ChannelRequest{
					Type: protocol.TypePublish, ID: "p", Channel: "room:1", ConnectionID: "a", Data: json.RawMessage(fmt.Sprint(n)),
				})
				return err
			}
			if err := publish(1); err != nil {
				t.Fatal(err)
			}
			<-arrived // round 1 holds offset 1; the queue is empty again
			for n := 2; n <= 5; n++ {
				if err := publish(n); err != nil {
					t.Fatalf("publish %d: %v", n, err)
				}
			}
			if wait == 0 {
				_, err := svc.Publish(t.Context(), "room:1", 6)
				var over *channel.OverloadedError
				if !errors.As(err, &over) || !errors.Is(err, channel.ErrOverloaded) || over.RetryAfter <= 0 {
					t.Fatalf("publish into a full queue: %v, want *OverloadedError with a retry hint", err)
				}
				var ce *streamer.ClientError
				if err := publish(6); !errors.As(err, &ce) || ce.Code != protocol.CodeOverloaded || ce.RetryAfter != over.RetryAfter {
					t.Fatalf("client publish into a full queue: %v, want OVERLOADED retrying after %v", err, over.RetryAfter)
				}
				// Through the router to a publisher's socket (a real
				// @connections endpoint): the error frame carries the hint
				// as retry_after_ms.
				conns := memory.New()
				sender := connection.NewManager(conns, w.srv.Client(), w.srv.URL)
				defer sender.Shutdown(context.Background())
				router := streamer.NewRouter(conns, sender, streamer.WithConnectionStore(conns), streamer.WithChannels(svc))
				if err := streamer.NewConnectHandler(conns).Connect(t.Context(), streamer.ConnectRequest{ConnectionID: "p"}); err != nil {
					t.Fatal(err)
				}
				if err := router.HandleMessage(t.Context(), streamer.Message{ConnectionID: "p", Body: []byte(`{"type":"publish","id":"p6","channel":"room:1","data":6}`)}); err != nil {
					t.Fatal(err)
				}
				posts := w.srv.Received("p")
				var refused protocol.Error
				if len(posts) != 1 || json.Unmarshal(posts[0], &refused) != nil ||
					refused.Type != protocol.TypeError || refused.Code != protocol.CodeOverloaded || refused.RequestID != "p6" ||
					refused.RetryAfterMs != over.RetryAfter.Milliseconds() || refused.RetryAfterMs <= 0 {
					t.Fatalf("publisher received %q, want one OVERLOADED error with retry_after_ms %d", posts, over.RetryAfter.Milliseconds())
				}
				pos, err := st.Position(t.Context(), channel.Key("", "room:1"))
				if err != nil || pos.Offset != 5 {
					t.Fatalf("position %d, %v; want 5: a refused publication takes no offset", pos.Offset, err)
				}
				release()
			} else {
				done := make(chan error, 1)
				go func() { done <- publish(6) }()
				select {
				case err := <-done:
					t.Fatalf("publish returned %v while the queue was full", err)
				case <-time.After(20 * time.Millisecond):
				}
				release()
				if err := <-done; err != nil {
					t.Fatalf("waiting publisher: %v", err)
				}
			}
			if err := svc.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := seq(1, 5)
			if wait > 0 {
				want = seq(1, 6)
			}
			if got := offsets(t, w.srv.Received("a")); !slices.Equal(got, want) {
				t.Errorf("received %v, want %v", got, want)
			}
		})
	}
}

// TestJoinsAreBatched: 100 subscribers join a join/leave channel while
// the first join's post is held. Each subscriber receives every join after
// its own subscription in order, and the whole costs O(N) posts, not the
// N²/2 of one post per join per subscriber.
func TestJoinsAreBatched(t *testing.T) {
	w := newWire(t)
	svc := newService(t, channel.NewMemoryStore(), w, channel.WithNamespace("room", channel.Namespace{JoinLeave: true}))
	arrived, release := w.srv.Hold("c000")
	defer release()
	subscribe(t, svc, "c000", "u", "", "room:1")
	<-arrived
	const n = 100
	for i := 1; i < n; i++ {
		subscribe(t, svc, fmt.Sprintf("c%03d", i), "u", "", "room:1")
	}
	release()
	if err := svc.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if posts := w.srv.TotalAttempts(); posts > 3*n {
		t.Errorf("%d posts for %d joins", posts, n)
	}
	for i := range n {
		var joined []string
		for _, b := range unbatch(t, w.srv.Received(fmt.Sprintf("c%03d", i))) {
			var ev protocol.PresenceEvent
			if err := json.Unmarshal(b, &ev); err != nil || ev.Type != protocol.TypeJoin {
				t.Fatalf("c%03d got %s", i, b)
			}
			joined = append(joined, ev.Info.ConnectionID)
		}
		// Everyone gets the joins of the round that follows their own
		// subscription; c000 also gets its own.
		if len(joined) == 0 || joined[len(joined)-1] != fmt.Sprintf("c%03d", n-1) || !slices.IsSorted(joined) {
			t.Errorf("c%03d saw joins %v", i, joined)
		}
	}
}

// heldStore holds Publish until released.
type heldStore struct {
	channel.Store
	entered chan struct{}
	release chan struct{}
}

func (s *heldStore) Publish(ctx context.Context, ch string, e channel.Entry, h channel.HistoryOptions) (channel.Position, error) {
	close(s.entered)
	<-s.release
	return s.Store.Publish(ctx, ch, e, h)
}

// TestShutdownWaitsForAPublicationBeingStored: a publication whose store
// write is under way when Shutdown starts is acknowledged and delivered
// before Shutdown returns, never acknowledged and then dropped.
func TestShutdownWaitsForAPublicationBeingStored(t *testing.T) {
	w := newWire(t)
	st := &heldStore{Store: channel.NewMemoryStore(), entered: make(chan struct{}), release: make(chan struct{})}
	svc := channel.New(st, w.mgr)
	subscribe(t, svc, "a", "u1", "", "news")
	published := make(chan error, 1)
	go func() {
		_, err := svc.Publish(t.Context(), "news", 1)
		published <- err
	}()
	<-st.entered
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Shutdown(t.Context()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned %v while a publication was being stored", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(st.release)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got := offsets(t, w.srv.Received("a")); !slices.Equal(got, []uint64{1}) {
		t.Errorf("received %v, want [1]", got)
	}
	if _, err := svc.Publish(t.Context(), "news", 2); !errors.Is(err, channel.ErrClosed) {
		t.Errorf("publish after Shutdown: %v, want ErrClosed", err)
	}
}
