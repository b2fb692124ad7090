package channel_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// TestSendEachRoutesByRecord: with a Manager that has no endpoint (a
// Lambda without STREAMER_MANAGEMENT_ENDPOINT), SendEach reaches each
// subscriber at the endpoint its record names; a gone subscriber (410)
// and one whose record is gone are unsubscribed.
func TestSendEachRoutesByRecord(t *testing.T) {
	srv := connectiontest.NewServer()
	client := srv.Client()
	conns := memory.New()
	mgr := connection.NewManager(conns, client, "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mgr.Shutdown(ctx)
		srv.Close()
		closeIdle(client)
	})
	ctx := t.Context()
	for _, id := range []string{"live-1", "live-2", "gone"} {
		if err := conns.Save(ctx, &store.Connection{ConnectionID: id, UserID: "u", Endpoint: srv.URL, TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Disconnect("gone")
	st := channel.NewMemoryStore()
	svc := channel.New(st, channel.SendEach(mgr, 4))
	t.Cleanup(func() { svc.Shutdown(context.Background()) })
	for _, id := range []string{"live-1", "live-2", "gone", "no-record"} {
		subscribe(t, svc, id, "u", "", "news")
	}
	if _, err := svc.Publish(ctx, "news", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"live-1", "live-2"} {
		if got := offsets(t, srv.Received(id)); !slices.Equal(got, []uint64{1}) {
			t.Errorf("%s received %v", id, got)
		}
	}
	subs, err := st.Subscribers(ctx, channel.Key("", "news"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range subs {
		ids = append(ids, s.ConnectionID)
	}
	slices.Sort(ids)
	if want := []string{"live-1", "live-2"}; !slices.Equal(ids, want) {
		t.Errorf("subscribers after the fan-out %v, want %v", ids, want)
	}
}
