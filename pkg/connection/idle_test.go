package connection_test

import (
	"context"
	"testing"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

func TestShutdownClosesIdleConnectionsOfItsClient(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	// A second stage: its connections go through a client the manager
	// derives, which must share (and so release) the same pool.
	other := connectiontest.NewServer()
	defer other.Close()
	st := memory.New()
	ctx := context.Background()
	if err := st.Save(ctx, &store.Connection{ConnectionID: "far", Endpoint: other.URL}); err != nil {
		t.Fatal(err)
	}
	m := connection.NewManager(st, srv.Client(), srv.URL)
	if err := m.Broadcast(ctx, ids("c", 40), "m"); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctx, "far", "m"); err != nil {
		t.Fatal(err)
	}
	if srv.OpenConns() == 0 || other.OpenConns() == 0 {
		t.Fatal("no keep-alive connection to close")
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return srv.OpenConns() == 0 && other.OpenConns() == 0 })
}
