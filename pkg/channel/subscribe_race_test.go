package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// barrierStore holds every Subscribe until n of them have been called, so
// that n subscribes of one connection all pass the service's check of the
// connection's count before any of them writes: the interleaving that
// concurrent messages of one connection (on API Gateway and in the local
// runtime) can produce.
type barrierStore struct {
	channel.Store
	n    int
	mu   sync.Mutex
	seen int
	all  chan struct{}
}

func newBarrierStore(st channel.Store, n int) *barrierStore {
	return &barrierStore{Store: st, n: n, all: make(chan struct{})}
}

func (s *barrierStore) Subscribe(ctx context.Context, ch string, sub channel.Subscriber, exp time.Time) (bool, error) {
	s.mu.Lock()
	s.seen++
	if s.seen == s.n {
		close(s.all)
	}
	s.mu.Unlock()
	select {
	case <-s.all:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.Store.Subscribe(ctx, ch, sub, exp)
}

// serveAtOnce serves n subscribes of connection c1 concurrently, channel
// name(i) for the i-th, and returns each one's error.
func serveAtOnce(t *testing.T, svc *channel.Service, n int, name func(int) string) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = svc.ServeChannel(t.Context(), &streamer.ChannelRequest{
				Type: protocol.TypeSubscribe, ID: fmt.Sprint("s", i), Channel: name(i), ConnectionID: "c1",
				Identity: streamer.Identity{UserID: "u", TenantID: "acme"},
			})
		})
	}
	wg.Wait()
	return errs
}

// TestConcurrentSubscribesKeepTheLimit: 6 subscribes of one connection to
// different channels pass the count check together under a limit of 3.
// The connection ends with at most 3 subscriptions, every subscribe that
// was answered is among them and every refused one (FORBIDDEN) is not.
func TestConcurrentSubscribesKeepTheLimit(t *testing.T) {
	const n, limit = 6, 3
	mem := channel.NewMemoryStore()
	svc := newService(t, newBarrierStore(mem, n), newWire(t), channel.WithMaxSubscriptions(limit))
	errs := serveAtOnce(t, svc, n, func(i int) string { return fmt.Sprint("ch", i) })
	chans, err := mem.Subscriptions(t.Context(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) > limit {
		t.Errorf("%d subscriptions after concurrent subscribes, over the limit of %d: %v", len(chans), limit, chans)
	}
	for i, err := range errs {
		key := channel.Key("acme", fmt.Sprint("ch", i))
		var ce *streamer.ClientError
		switch {
		case err == nil && !slices.Contains(chans, key):
			t.Errorf("subscribe %d answered but not stored", i)
		case err != nil && (!errors.As(err, &ce) || ce.Code != protocol.CodeForbidden):
			t.Errorf("subscribe %d: %v, want FORBIDDEN", i, err)
		case err != nil && slices.Contains(chans, key):
			t.Errorf("subscribe %d refused but stored", i)
		}
	}
}

// TestConcurrentSubscribesToOneChannelJoinOnce: 4 subscribes of one
// connection to one join/leave channel, all at once: every one is answered
// and the channel announces the connection's join once.
func TestConcurrentSubscribesToOneChannelJoinOnce(t *testing.T) {
	const n = 4
	w := newWire(t)
	svc := newService(t, newBarrierStore(channel.NewMemoryStore(), n), w,
		channel.WithNamespace("room", channel.Namespace{JoinLeave: true}))
	for i, err := range serveAtOnce(t, svc, n, func(int) string { return "room:1" }) {
		if err != nil {
			t.Errorf("subscribe %d: %v", i, err)
		}
	}
	if err := svc.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	joins := 0
	for _, b := range unbatch(t, w.srv.Received("c1")) {
		var ev protocol.PresenceEvent
		if err := json.Unmarshal(b, &ev); err == nil && ev.Type == protocol.TypeJoin {
			joins++
		}
	}
	if joins != 1 {
		t.Errorf("%d joins announced for one connection, want 1", joins)
	}
}
