package connectiontest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// A test drives a real Manager against the loopback gateway and scripts
// a transient failure.
func ExampleNewServer() {
	ctx := context.Background()
	gateway := connectiontest.NewServer()
	defer gateway.Close()
	conns := memory.New()
	_ = conns.Save(ctx, &store.Connection{ConnectionID: "c1"})
	mgr := connection.NewManager(conns, gateway.Client(), gateway.URL)
	defer mgr.Shutdown(ctx)

	gateway.Script("c1", 503) // the first attempt fails, the retry succeeds
	err := mgr.Send(ctx, "c1", "hello")
	fmt.Println(err, gateway.Attempts("c1"), len(gateway.Received("c1")))
	// Output: <nil> 2 1
}

// The Recorder stands in for the Manager in unit tests of code that
// sends; SendFunc injects failures.
func ExampleRecorder() {
	rec := &connectiontest.Recorder{
		SendFunc: func(_ context.Context, id string, _ any) error {
			if id == "gone" {
				return connection.ErrConnectionStale
			}
			return nil
		},
	}
	ctx := context.Background()
	_ = rec.Send(ctx, "c1", map[string]int{"progress": 50})
	err := rec.Send(ctx, "gone", "hi")
	fmt.Println(string(rec.To("c1")[0]), errors.Is(err, connection.ErrConnectionStale))
	// Output: {"progress":50} true
}
