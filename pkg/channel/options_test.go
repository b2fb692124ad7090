package channel_test

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func subscribeErr(t *testing.T, svc *channel.Service, conn, name string) error {
	t.Helper()
	_, err := svc.ServeChannel(t.Context(), &streamer.ChannelRequest{
		Type: protocol.TypeSubscribe, ID: "s", Channel: name, ConnectionID: conn,
		Identity: streamer.Identity{UserID: "u", TenantID: "acme"},
	})
	return err
}

// TestWithMaxSubscriptions: a connection gets at most n channels; the
// next is refused with FORBIDDEN, a channel it already has is not counted
// twice, and another connection has its own allowance. n <= 0 keeps the
// default.
func TestWithMaxSubscriptions(t *testing.T) {
	w := newWire(t)
	svc := newService(t, channel.NewMemoryStore(), w, channel.WithMaxSubscriptions(2))
	for _, name := range []string{"a", "b", "a"} {
		if err := subscribeErr(t, svc, "c1", name); err != nil {
			t.Fatalf("subscribe %s: %v", name, err)
		}
	}
	var ce *streamer.ClientError
	if err := subscribeErr(t, svc, "c1", "c"); !errors.As(err, &ce) || ce.Code != protocol.CodeForbidden {
		t.Fatalf("third channel: %v, want a FORBIDDEN ClientError", err)
	}
	if err := subscribeErr(t, svc, "c2", "c"); err != nil {
		t.Fatalf("another connection: %v", err)
	}

	dflt := newService(t, channel.NewMemoryStore(), w, channel.WithMaxSubscriptions(0))
	for i := range channel.DefaultMaxSubscriptions {
		if err := subscribeErr(t, dflt, "c1", string(rune('a'+i%26))+string(rune('a'+i/26))); err != nil {
			t.Fatalf("subscription %d under the default cap of %d: %v", i+1, channel.DefaultMaxSubscriptions, err)
		}
	}
	if err := subscribeErr(t, dflt, "c1", "one-more"); !errors.As(err, &ce) || ce.Code != protocol.CodeForbidden {
		t.Fatalf("past the default cap: %v", err)
	}
}

// TestWithSubscriptionTTL: a subscription lives for the TTL from its
// subscribe, then gets no publications.
func TestWithSubscriptionTTL(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	w := newWire(t)
	svc := newService(t, channel.NewMemoryStore(channel.WithMemoryClock(clock)), w,
		channel.WithClock(clock), channel.WithSubscriptionTTL(time.Minute))
	if err := subscribeErr(t, svc, "short", "news"); err != nil {
		t.Fatal(err)
	}
	publish := func() {
		t.Helper()
		if _, err := svc.In("acme").Publish(t.Context(), "news", 1); err != nil {
			t.Fatal(err)
		}
		if err := svc.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	publish() // offset 1, within the minute
	now.Add(int64(59 * time.Second))
	publish() // offset 2, still within
	now.Add(int64(2 * time.Second))
	publish() // offset 3: the subscription has expired
	if got := offsets(t, w.srv.Received("short")); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("received %v, want [1 2]: nothing after the TTL", got)
	}
}
