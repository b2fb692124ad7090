package channeltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
)

// Factory returns a new, empty store whose notion of the current time is
// now (used for subscription and history expiry).
type Factory func(t *testing.T, now func() time.Time) channel.Store

// Clock is a settable clock shared by a case and its store.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a Clock at start.
func NewClock(start time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(start.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Publishers and PerPublisher size the concurrency case.
const (
	Publishers   = 8
	PerPublisher = 25
)

// Run runs the contract suite against stores made by newStore. Each case
// gets a fresh store and its own channel keys.
func Run(t *testing.T, newStore Factory) {
	cases := []struct {
		name string
		fn   func(t *testing.T, st channel.Store, clock *Clock)
	}{
		{"SubscribeAndList", subscribeAndList},
		{"SubscriptionExpires", subscriptionExpires},
		{"UnsubscribeReportsRemoved", unsubscribeReportsRemoved},
		{"OffsetsStartAtOneAndEpochIsStable", offsetsAndEpoch},
		{"HistoryKeepsSizeInOrder", historyKeepsSize},
		{"HistoryExpires", historyExpires},
		{"NoHistory", noHistory},
		{"ConcurrentPublishersNoGapNoDuplicate", concurrentPublishers},
		{"HistoryIsExactWhilePublishing", historyWhilePublishing},
		{"KeysAreIndependent", keysAreIndependent},
		{"InvalidInput", invalidInput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := NewClock(time.Unix(1_800_000_000, 0))
			c.fn(t, newStore(t, clock.Now), clock)
		})
	}
}

// key returns a channel key unique to the test, so stores shared between
// cases (one dynalite table) never mix them.
func key(t *testing.T, name string) string {
	return channel.Key("tenant-"+t.Name(), name)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// subscribe calls Subscribe and checks what it reports as created.
func subscribe(t *testing.T, st channel.Store, ch string, sub channel.Subscriber, expires time.Time, wantCreated bool) {
	t.Helper()
	created, err := st.Subscribe(t.Context(), ch, sub, expires)
	if err != nil {
		t.Fatal(err)
	}
	if created != wantCreated {
		t.Errorf("Subscribe(%s, %s) created = %v, want %v", ch, sub.ConnectionID, created, wantCreated)
	}
}

func subscriberIDs(t *testing.T, st channel.Store, ch string) []string {
	t.Helper()
	subs, err := st.Subscribers(t.Context(), ch)
	must(t, err)
	var ids []string
	for _, s := range subs {
		ids = append(ids, s.ConnectionID+"/"+s.UserID)
	}
	slices.Sort(ids)
	return ids
}

func subscriptions(t *testing.T, st channel.Store, conn string) []string {
	t.Helper()
	keys, err := st.Subscriptions(t.Context(), conn)
	must(t, err)
	slices.Sort(keys)
	return keys
}

func subscribeAndList(t *testing.T, st channel.Store, clock *Clock) {
	a, b := key(t, "a"), key(t, "b")
	conn1, conn2 := "c1-"+t.Name(), "c2-"+t.Name()
	exp := clock.Now().Add(time.Hour)
	subscribe(t, st, a, channel.Subscriber{ConnectionID: conn1, UserID: "u1"}, exp, true)
	subscribe(t, st, a, channel.Subscriber{ConnectionID: conn2, UserID: "u2"}, exp, true)
	subscribe(t, st, b, channel.Subscriber{ConnectionID: conn1, UserID: "u1"}, exp, true)
	// Subscribing again refreshes; it adds nothing.
	subscribe(t, st, a, channel.Subscriber{ConnectionID: conn1, UserID: "u1"}, exp, false)
	if got, want := subscriberIDs(t, st, a), []string{conn1 + "/u1", conn2 + "/u2"}; !slices.Equal(got, want) {
		t.Errorf("subscribers of a = %v, want %v", got, want)
	}
	if got, want := subscriberIDs(t, st, b), []string{conn1 + "/u1"}; !slices.Equal(got, want) {
		t.Errorf("subscribers of b = %v, want %v", got, want)
	}
	want := []string{a, b}
	slices.Sort(want)
	if got := subscriptions(t, st, conn1); !slices.Equal(got, want) {
		t.Errorf("subscriptions of conn1 = %v, want %v", got, want)
	}
	if got := subscriberIDs(t, st, key(t, "nobody")); len(got) != 0 {
		t.Errorf("subscribers of an unknown channel = %v", got)
	}
	if got := subscriptions(t, st, "unknown-"+t.Name()); len(got) != 0 {
		t.Errorf("subscriptions of an unknown connection = %v", got)
	}
}

func subscriptionExpires(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	short, long := "short-"+t.Name(), "long-"+t.Name()
	subscribe(t, st, a, channel.Subscriber{ConnectionID: short, UserID: "u"}, clock.Now().Add(time.Minute), true)
	subscribe(t, st, a, channel.Subscriber{ConnectionID: long, UserID: "u"}, clock.Now().Add(time.Hour), true)
	clock.Advance(2 * time.Minute)
	if got, want := subscriberIDs(t, st, a), []string{long + "/u"}; !slices.Equal(got, want) {
		t.Errorf("after expiry subscribers = %v, want %v", got, want)
	}
	if got := subscriptions(t, st, short); len(got) != 0 {
		t.Errorf("expired connection still lists %v", got)
	}
	if _, ok, err := st.Unsubscribe(ctx, a, short); err != nil || ok {
		t.Errorf("unsubscribing an expired subscription = %v, %v; want not found", ok, err)
	}
	// Renewing before expiry keeps it; subscribing after expiry creates
	// the subscription anew.
	subscribe(t, st, a, channel.Subscriber{ConnectionID: long, UserID: "u"}, clock.Now().Add(2*time.Hour), false)
	subscribe(t, st, key(t, "b"), channel.Subscriber{ConnectionID: short, UserID: "u"}, clock.Now().Add(time.Minute), true)
	clock.Advance(2 * time.Minute)
	subscribe(t, st, key(t, "b"), channel.Subscriber{ConnectionID: short, UserID: "u"}, clock.Now().Add(time.Minute), true)
	clock.Advance(90 * time.Minute)
	if got := subscriberIDs(t, st, a); len(got) != 1 {
		t.Errorf("renewed subscription gone: %v", got)
	}
}

func unsubscribeReportsRemoved(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	conn := "c-" + t.Name()
	subscribe(t, st, a, channel.Subscriber{ConnectionID: conn, UserID: "alice"}, clock.Now().Add(time.Hour), true)
	sub, ok, err := st.Unsubscribe(ctx, a, conn)
	if err != nil || !ok || sub.ConnectionID != conn || sub.UserID != "alice" {
		t.Errorf("Unsubscribe = %+v, %v, %v", sub, ok, err)
	}
	if _, ok, err := st.Unsubscribe(ctx, a, conn); err != nil || ok {
		t.Errorf("second Unsubscribe = %v, %v, want not found and no error", ok, err)
	}
	if got := subscriberIDs(t, st, a); len(got) != 0 {
		t.Errorf("subscribers after unsubscribe = %v", got)
	}
	if got := subscriptions(t, st, conn); len(got) != 0 {
		t.Errorf("subscriptions after unsubscribe = %v", got)
	}
}

func offsetsAndEpoch(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	p0, err := st.Position(ctx, a)
	must(t, err)
	if p0.Offset != 0 || p0.Epoch == "" {
		t.Fatalf("new channel position %+v, want offset 0 and an epoch", p0)
	}
	if again, err := st.Position(ctx, a); err != nil || again != p0 {
		t.Errorf("Position again = %+v, %v, want %+v", again, err, p0)
	}
	h := channel.HistoryOptions{Size: 10}
	for i := uint64(1); i <= 5; i++ {
		pos, err := st.Publish(ctx, a, channel.Entry{Data: fmt.Appendf(nil, `{"n":%d}`, i), UserID: "u"}, h)
		must(t, err)
		if pos.Offset != i || pos.Epoch != p0.Epoch {
			t.Errorf("publish %d: position %+v, want offset %d epoch %s", i, pos, i, p0.Epoch)
		}
	}
	if p, err := st.Position(ctx, a); err != nil || p.Offset != 5 || p.Epoch != p0.Epoch {
		t.Errorf("Position after 5 = %+v, %v", p, err)
	}
	// A channel first seen through Publish gets an epoch too.
	b := key(t, "b")
	pos, err := st.Publish(ctx, b, channel.Entry{Data: []byte(`1`)}, h)
	must(t, err)
	if pos.Offset != 1 || pos.Epoch == "" {
		t.Errorf("first publish on a new channel %+v", pos)
	}
}

func historyKeepsSize(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	h := channel.HistoryOptions{Size: 5}
	for i := 1; i <= 12; i++ {
		user := ""
		if i%2 == 0 {
			user = "even"
		}
		_, err := st.Publish(ctx, a, channel.Entry{Data: fmt.Appendf(nil, `{"n":%d}`, i), UserID: user}, h)
		must(t, err)
	}
	entries, pos, err := st.History(ctx, a, 0)
	must(t, err)
	if pos.Offset != 12 {
		t.Errorf("position %+v", pos)
	}
	var offs []uint64
	for _, e := range entries {
		offs = append(offs, e.Offset)
		if want := fmt.Sprintf(`{"n":%d}`, e.Offset); string(e.Data) != want {
			t.Errorf("entry %d data %s, want %s", e.Offset, e.Data, want)
		}
		if want := map[bool]string{true: "even", false: ""}[e.Offset%2 == 0]; e.UserID != want {
			t.Errorf("entry %d user %q, want %q", e.Offset, e.UserID, want)
		}
	}
	if want := []uint64{8, 9, 10, 11, 12}; !slices.Equal(offs, want) {
		t.Errorf("history offsets %v, want %v", offs, want)
	}
	entries, _, err = st.History(ctx, a, 10)
	must(t, err)
	if len(entries) != 2 || entries[0].Offset != 11 || entries[1].Offset != 12 {
		t.Errorf("history after 10 = %+v", entries)
	}
	entries, _, err = st.History(ctx, a, 12)
	must(t, err)
	if len(entries) != 0 {
		t.Errorf("history after the last = %+v", entries)
	}
}

func historyExpires(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	h := channel.HistoryOptions{Size: 100, TTL: time.Minute}
	for range 3 {
		_, err := st.Publish(ctx, a, channel.Entry{Data: []byte(`"old"`)}, h)
		must(t, err)
	}
	clock.Advance(2 * time.Minute)
	_, err := st.Publish(ctx, a, channel.Entry{Data: []byte(`"new"`)}, h)
	must(t, err)
	entries, pos, err := st.History(ctx, a, 0)
	must(t, err)
	if pos.Offset != 4 || len(entries) != 1 || entries[0].Offset != 4 {
		t.Errorf("after expiry: position %+v, entries %+v; want only offset 4", pos, entries)
	}
}

func noHistory(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	for i := uint64(1); i <= 3; i++ {
		pos, err := st.Publish(ctx, a, channel.Entry{Data: []byte(`1`)}, channel.HistoryOptions{})
		must(t, err)
		if pos.Offset != i {
			t.Errorf("offset %d, want %d", pos.Offset, i)
		}
	}
	entries, pos, err := st.History(ctx, a, 0)
	must(t, err)
	if len(entries) != 0 || pos.Offset != 3 {
		t.Errorf("no-history channel: %+v at %+v", entries, pos)
	}
}

func concurrentPublishers(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	h := channel.HistoryOptions{Size: Publishers * PerPublisher}
	var (
		mu   sync.Mutex
		offs []uint64
		wg   sync.WaitGroup
		errs = make(chan error, Publishers)
	)
	for p := range Publishers {
		wg.Go(func() {
			for i := range PerPublisher {
				pos, err := st.Publish(ctx, a, channel.Entry{Data: fmt.Appendf(nil, `{"p":%d,"i":%d}`, p, i)}, h)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				offs = append(offs, pos.Offset)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(offs)
	for i, o := range offs {
		if o != uint64(i)+1 {
			t.Fatalf("offsets %v: gap or duplicate at %d", offs, i)
		}
	}
	entries, pos, err := st.History(ctx, a, 0)
	must(t, err)
	if pos.Offset != Publishers*PerPublisher || len(entries) != Publishers*PerPublisher {
		t.Errorf("after %d concurrent publications: position %+v, %d entries", Publishers*PerPublisher, pos, len(entries))
	}
}

// historyWhilePublishing: while Publishers publish in parallel, readers
// ask for the history after recent offsets; every answer holds exactly
// the entries after+1 up to the position it reports, none missing (a
// publication whose offset is taken but whose entry is still being
// written must not show as a hole), with the data that was published
// under that offset.
func historyWhilePublishing(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	a := key(t, "a")
	h := channel.HistoryOptions{Size: Publishers * PerPublisher}
	var (
		wg      sync.WaitGroup
		done    = make(chan struct{})
		errs    = make(chan error, Publishers+2)
		mu      sync.Mutex
		written = map[uint64]string{}
	)
	for p := range Publishers {
		wg.Go(func() {
			for i := range PerPublisher {
				data := fmt.Sprintf(`{"p":%d,"i":%d}`, p, i)
				pos, err := st.Publish(ctx, a, channel.Entry{Data: []byte(data)}, h)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				written[pos.Offset] = data
				mu.Unlock()
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			var last uint64
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				after := last - min(last, uint64(r*3+n%5))
				entries, pos, err := st.History(ctx, a, after)
				if err != nil {
					errs <- err
					return
				}
				if uint64(len(entries)) != pos.Offset-min(after, pos.Offset) {
					errs <- fmt.Errorf("history after %d at position %d: %d entries", after, pos.Offset, len(entries))
					return
				}
				for i, e := range entries {
					if e.Offset != after+uint64(i)+1 {
						errs <- fmt.Errorf("history after %d: entry %d has offset %d", after, i, e.Offset)
						return
					}
					mu.Lock()
					want, ok := written[e.Offset]
					mu.Unlock()
					if ok && want != string(e.Data) {
						errs <- fmt.Errorf("offset %d holds %s, was published with %s", e.Offset, e.Data, want)
						return
					}
				}
				last = pos.Offset
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func keysAreIndependent(t *testing.T, st channel.Store, clock *Clock) {
	ctx := t.Context()
	// The same name in two tenants, and a tenant id that itself holds
	// the separator, are separate channels.
	acme, globex, tricky := channel.Key("acme-"+t.Name(), "news"), channel.Key("globex-"+t.Name(), "news"), channel.Key("acme-"+t.Name()+"#news", "x")
	h := channel.HistoryOptions{Size: 10}
	for range 3 {
		_, err := st.Publish(ctx, acme, channel.Entry{Data: []byte(`"acme"`)}, h)
		must(t, err)
	}
	pos, err := st.Publish(ctx, globex, channel.Entry{Data: []byte(`"globex"`)}, h)
	must(t, err)
	if pos.Offset != 1 {
		t.Errorf("globex's first offset %d, want 1", pos.Offset)
	}
	entries, _, err := st.History(ctx, globex, 0)
	must(t, err)
	if len(entries) != 1 || string(entries[0].Data) != `"globex"` {
		t.Errorf("globex history %+v", entries)
	}
	conn := "c-" + t.Name()
	subscribe(t, st, acme, channel.Subscriber{ConnectionID: conn, UserID: "u"}, clock.Now().Add(time.Hour), true)
	if got := subscriberIDs(t, st, globex); len(got) != 0 {
		t.Errorf("globex sees acme's subscriber: %v", got)
	}
	if got := subscriberIDs(t, st, tricky); len(got) != 0 {
		t.Errorf("a tenant id holding the separator sees another channel: %v", got)
	}
	if tenant, name := channel.SplitKey(tricky); tenant != "acme-"+t.Name()+"#news" || name != "x" {
		t.Errorf("SplitKey(%q) = %q, %q", tricky, tenant, name)
	}
}

func invalidInput(t *testing.T, st channel.Store, clock *Clock) {
	ctx := context.WithoutCancel(t.Context())
	exp := clock.Now().Add(time.Hour)
	checks := map[string]error{}
	_, checks["subscribe without channel"] = st.Subscribe(ctx, "", channel.Subscriber{ConnectionID: "c", UserID: "u"}, exp)
	_, checks["subscribe without connection"] = st.Subscribe(ctx, key(t, "a"), channel.Subscriber{UserID: "u"}, exp)
	_, _, checks["unsubscribe without channel"] = st.Unsubscribe(ctx, "", "c")
	_, checks["publish without channel"] = st.Publish(ctx, "", channel.Entry{Data: []byte(`1`)}, channel.HistoryOptions{})
	_, _, checks["history without channel"] = st.History(ctx, "", 0)
	_, checks["position without channel"] = st.Position(ctx, "")
	for name, err := range checks {
		if !errors.Is(err, channel.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
}
