package channel_test

import (
	"slices"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
)

// eventually polls cond until it holds, failing after a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// TestUndeliveredPublicationIsPostedAgain runs through a real
// @connections endpoint on loopback: a subscriber whose posts fail with
// 503 past the Manager's retries (and nothing more is published) still
// receives the publication, once, when its endpoint answers again; one
// whose endpoint then answers 410 is unsubscribed and receives nothing;
// the healthy subscriber receives it once.
func TestUndeliveredPublicationIsPostedAgain(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			w := newWire(t)
			st := mk(t)
			svc := newService(t, st, w, channel.WithRedelivery(time.Millisecond, 20*time.Millisecond))
			for _, id := range []string{"ok", "flaky", "gone"} {
				subscribe(t, svc, id, "u-"+id, "acme", "feed")
			}
			// More 503s than one post's attempts: the first delivery and
			// some redeliveries fail.
			w.srv.Script("flaky", 503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
			w.srv.Script("gone", 503, 503, 503, 503)
			w.srv.Disconnect("gone")
			if _, err := svc.In("acme").Publish(t.Context(), "feed", map[string]string{"text": "hi"}); err != nil {
				t.Fatal(err)
			}
			if err := svc.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "flaky receives the publication", func() bool { return len(w.srv.Received("flaky")) > 0 })
			eventually(t, "gone is unsubscribed", func() bool {
				subs, err := st.Subscribers(t.Context(), channel.Key("acme", "feed"))
				if err != nil {
					t.Fatal(err)
				}
				return !slices.ContainsFunc(subs, func(s channel.Subscriber) bool { return s.ConnectionID == "gone" })
			})
			for id, want := range map[string][]uint64{"ok": {1}, "flaky": {1}, "gone": nil} {
				if got := offsets(t, w.srv.Received(id)); !slices.Equal(got, want) {
					t.Errorf("%s received %v, want %v", id, got, want)
				}
			}
		})
	}
}
