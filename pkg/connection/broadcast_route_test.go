package connection_test

import (
	"context"
	"errors"
	"testing"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// Two gateways share one store, as runtimes, APIs or Regions sharing a
// table do: a Broadcast reaches each connection through the endpoint its
// record names, and the gateway that does not know a connection (and
// answers 410 for it) never gets to delete its record.
func TestBroadcastRoutesEachIDToItsOwnEndpoint(t *testing.T) {
	f := newFixture(t)
	other := connectiontest.NewServer()
	defer other.Close()
	ctx := context.Background()
	own, far := ids("own", 5), ids("far", 5)
	f.connect(t, own...)
	for _, id := range far {
		if err := f.store.Save(ctx, &store.Connection{ConnectionID: id, Endpoint: other.URL + "/"}); err != nil {
			t.Fatal(err)
		}
	}
	// Each gateway answers 410 for the other's connections.
	f.srv.Disconnect(far...)
	other.Disconnect(own...)

	if err := f.m.Broadcast(ctx, append(append([]string{}, far...), own...), "m"); err != nil {
		t.Fatalf("Broadcast: %v", err)
	}
	for _, id := range own {
		if len(f.srv.Received(id)) != 1 || other.Attempts(id) != 0 {
			t.Errorf("%s: %d at its own gateway, %d attempts at the other", id, len(f.srv.Received(id)), other.Attempts(id))
		}
	}
	for _, id := range far {
		if len(other.Received(id)) != 1 || f.srv.Attempts(id) != 0 {
			t.Errorf("%s: %d at its own gateway, %d attempts at the manager's", id, len(other.Received(id)), f.srv.Attempts(id))
		}
		if !f.exists(t, id) {
			t.Errorf("live %s was deleted", id)
		}
	}

	// Gone from its own endpoint: that 410 is final and removes the record.
	other.Reset()
	other.Disconnect(far[0])
	err := f.m.Broadcast(ctx, far, "m")
	var be *connection.BroadcastError
	if !errors.As(err, &be) || len(be.Failed) != 1 || !errors.Is(be.Failed[far[0]], connection.ErrConnectionStale) {
		t.Fatalf("err = %v, want %s stale", err, far[0])
	}
	if f.exists(t, far[0]) {
		t.Errorf("gone %s still stored", far[0])
	}
}

// failingRoutes is a store whose batched route read fails.
type failingRoutes struct{ *memory.Store }

var errRoutes = errors.New("routes unavailable")

func (failingRoutes) GetRoutes(context.Context, []string) (map[string]store.Route, error) {
	return nil, errRoutes
}

// When the routes cannot be read, the IDs go through the manager's
// endpoint; a 410 there is not taken for the connection's own and its
// record stays.
func TestBroadcastKeepsRecordsWhenRoutesAreUnknown(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	st := failingRoutes{memory.New()}
	ctx := context.Background()
	for _, id := range []string{"here=", "elsewhere="} {
		if err := st.Save(ctx, &store.Connection{ConnectionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	m := connection.NewManager(st, srv.Client(), srv.URL)
	defer m.Shutdown(ctx)
	srv.Disconnect("elsewhere=")

	err := m.Broadcast(ctx, []string{"here=", "elsewhere="}, "m")
	var be *connection.BroadcastError
	if !errors.As(err, &be) || len(be.Failed) != 1 {
		t.Fatalf("err = %v, want one failure", err)
	}
	cause := be.Failed["elsewhere="]
	if !errors.Is(cause, connection.ErrNotOwnEndpoint) || errors.Is(cause, connection.ErrConnectionStale) {
		t.Errorf("cause = %v, want ErrNotOwnEndpoint and not stale", cause)
	}
	if _, err := st.Get(ctx, "elsewhere="); err != nil {
		t.Errorf("record removed on a 410 from a guessed endpoint: %v", err)
	}
	if len(srv.Received("here=")) != 1 {
		t.Errorf("here= not delivered")
	}
}

// countingRoutes counts the batched route reads of a memory store.
type countingRoutes struct {
	*memory.Store
	reads, ids int
}

func (s *countingRoutes) GetRoutes(ctx context.Context, ids []string) (map[string]store.Route, error) {
	s.reads++
	s.ids += len(ids)
	return s.Store.GetRoutes(ctx, ids)
}

// A connection's endpoint never changes: a Broadcast reads only the
// routes it has not read before, and a gone connection's is forgotten.
func TestBroadcastReadsEachRouteOnce(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	st := &countingRoutes{Store: memory.New()}
	ctx := context.Background()
	all := ids("c", 10)
	for _, id := range all {
		if err := st.Save(ctx, &store.Connection{ConnectionID: id}); err != nil {
			t.Fatal(err)
		}
	}
	m := connection.NewManager(st, srv.Client(), srv.URL)
	defer m.Shutdown(ctx)
	for range 3 {
		if err := m.Broadcast(ctx, all, "m"); err != nil {
			t.Fatal(err)
		}
	}
	if st.reads != 1 || st.ids != 10 {
		t.Errorf("3 broadcasts read routes %d times (%d IDs), want once (10)", st.reads, st.ids)
	}
	srv.Disconnect(all[0])
	_ = m.Broadcast(ctx, all, "m")
	if err := m.Broadcast(ctx, all, "m"); err == nil {
		t.Error("a gone connection was delivered to")
	}
	if st.reads != 2 || st.ids != 11 {
		t.Errorf("after a 410: %d reads of %d IDs, want the gone one read again", st.reads, st.ids)
	}
	for _, id := range all[1:] {
		if got := len(srv.Received(id)); got != 5 {
			t.Errorf("%s received %d, want 5", id, got)
		}
	}
}
