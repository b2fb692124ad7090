package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// flakyOut is a Broadcaster whose posts to some connections fail.
type flakyOut struct {
	mu   sync.Mutex
	fail map[string]error
	got  map[string][]uint64 // publication offsets received, per connection
}

func (f *flakyOut) Broadcast(_ context.Context, ids []string, msg any) error {
	var p protocol.Publication
	if err := json.Unmarshal(msg.(json.RawMessage), &p); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	be := &connection.BroadcastError{Total: len(ids), Failed: map[string]error{}}
	for _, id := range ids {
		if err := f.fail[id]; err != nil {
			be.Failed[id] = err
			continue
		}
		f.got[id] = append(f.got[id], p.Offset)
	}
	if len(be.Failed) == 0 {
		return nil
	}
	return be
}

func (f *flakyOut) set(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[id] = err
}

func (f *flakyOut) received(id string) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got[id])
}

// TestRedeliveryBackoffAndEnds drives the redelivery clock by hand: a
// subscriber whose posts fail is owed the newest publication, tried again
// after 1, 2, 4, 4 s (the cap); once its posts succeed it receives that
// publication alone (the older one it recovers from history) and the
// tries end. A subscriber that unsubscribed, one that is gone (410) and
// one a later round reached are no longer tried.
func TestRedeliveryBackoffAndEnds(t *testing.T) {
	out := &flakyOut{fail: map[string]error{}, got: map[string][]uint64{}}
	st := NewMemoryStore()
	svc := New(st, out, WithRedelivery(time.Second, 4*time.Second))
	waits := make(chan time.Duration, 16)
	fire := make(chan time.Time)
	svc.redo.after = func(d time.Duration) <-chan time.Time {
		waits <- d
		return fire
	}
	ctx := t.Context()
	for _, id := range []string{"ok", "slow", "leaves", "gone", "healed"} {
		if _, err := svc.ServeChannel(ctx, &streamer.ChannelRequest{Type: protocol.TypeSubscribe, ID: "s", Channel: "news", ConnectionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	publish := func() {
		t.Helper()
		if _, err := svc.Publish(ctx, "news", 1); err != nil {
			t.Fatal(err)
		}
		if err := svc.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	throttled := fmt.Errorf("posting: %w", connection.ErrCircuitOpen)
	for _, id := range []string{"slow", "leaves", "gone", "healed"} {
		out.set(id, throttled)
	}
	publish() // offset 1: all but "ok" owe it
	if d := <-waits; d != time.Second {
		t.Fatalf("first wait %v, want 1s", d)
	}
	out.set("healed", nil)
	publish() // offset 2 reaches "healed": its debt is settled; the others owe 2
	if _, _, err := st.Unsubscribe(ctx, Key("", "news"), "leaves"); err != nil {
		t.Fatal(err)
	}
	out.set("gone", fmt.Errorf("posting: %w", connection.ErrConnectionStale))

	for _, want := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		fire <- time.Time{}
		if d := <-waits; d != want {
			t.Fatalf("wait %v, want %v", d, want)
		}
	}
	out.set("slow", nil)
	fire <- time.Time{} // "slow" receives 2; nothing is owed any more

	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 0 {
		t.Errorf("redelivery went on after every debt was settled: waits %v", <-waits)
	}
	want := map[string][]uint64{"ok": {1, 2}, "healed": {2}, "slow": {2}}
	for _, id := range []string{"ok", "slow", "leaves", "gone", "healed"} {
		if got := out.received(id); !slices.Equal(got, want[id]) {
			t.Errorf("%s received %v, want %v", id, got, want[id])
		}
	}
	subs, err := st.Subscribers(ctx, Key("", "news"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range subs {
		ids = append(ids, s.ConnectionID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"healed", "ok", "slow"}) {
		t.Errorf("subscribers %v, want the gone one removed", ids)
	}
}

// listFails is a Store whose Subscribers fails while fails is above 0.
type listFails struct {
	Store
	fails atomic.Int32
}

func (s *listFails) Subscribers(ctx context.Context, key string) ([]Subscriber, error) {
	if s.fails.Add(-1) >= 0 {
		return nil, errors.New("store unavailable")
	}
	return s.Store.Subscribers(ctx, key)
}

// TestRedeliveryAfterListingFailed: a round that cannot list its
// channel's subscribers owes its newest publication to all of them; the
// next try lists them and posts it to each, once.
func TestRedeliveryAfterListingFailed(t *testing.T) {
	out := &flakyOut{fail: map[string]error{}, got: map[string][]uint64{}}
	st := &listFails{Store: NewMemoryStore()}
	svc := New(st, out)
	waits := make(chan time.Duration, 16)
	fire := make(chan time.Time)
	svc.redo.after = func(d time.Duration) <-chan time.Time {
		waits <- d
		return fire
	}
	ctx := t.Context()
	for _, id := range []string{"x", "y"} {
		if _, err := svc.ServeChannel(ctx, &streamer.ChannelRequest{Type: protocol.TypeSubscribe, ID: "s", Channel: "news", ConnectionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	st.fails.Store(subscriberReads)
	if _, err := svc.Publish(ctx, "news", 1); err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d := <-waits; d != DefaultRedeliveryDelay {
		t.Fatalf("first wait %v", d)
	}
	for _, id := range []string{"x", "y"} {
		if got := out.received(id); len(got) != 0 {
			t.Fatalf("%s received %v before the retry", id, got)
		}
	}
	fire <- time.Time{}
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 0 {
		t.Errorf("redelivery went on after every subscriber was reached")
	}
	for _, id := range []string{"x", "y"} {
		if got := out.received(id); !slices.Equal(got, []uint64{1}) {
			t.Errorf("%s received %v, want [1]", id, got)
		}
	}
}
