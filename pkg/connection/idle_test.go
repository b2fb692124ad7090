package connection_test

import (
	"context"
	"testing"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

func TestShutdownClosesIdleConnectionsOfItsClient(t *testing.T) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	st := memory.New()
	m := connection.NewManager(st, srv.Client(), srv.URL)
	if err := m.Broadcast(context.Background(), ids("c", 40), "m"); err != nil {
		t.Fatal(err)
	}
	if srv.OpenConns() == 0 {
		t.Fatal("no keep-alive connection to close")
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return srv.OpenConns() == 0 })
}
