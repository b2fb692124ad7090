package connection_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// The quick start: a manager over the in-memory store, sending through
// the lean signed client. Here a connectiontest server plays API Gateway; in
// production the config comes from config.LoadDefaultConfig and the
// endpoint is https://{api-id}.execute-api.{region}.amazonaws.com/{stage}.
func Example() {
	ctx := context.Background()
	gateway := connectiontest.NewServer() // stands in for API Gateway
	defer gateway.Close()
	endpoint := gateway.URL

	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	conns := memory.New()
	mgr := connection.NewManager(conns, connection.NewFastClient(cfg, endpoint), endpoint)
	defer mgr.Shutdown(ctx)

	// Your $connect handler saves each connection.
	_ = conns.Save(ctx, &store.Connection{ConnectionID: "L0SM9cOFvHcCIhw=", UserID: "alice", TenantID: "acme"})
	_ = conns.Save(ctx, &store.Connection{ConnectionID: "Bx3kTq9HvPECFjA=", UserID: "bob", TenantID: "acme"})

	// Send to one connection.
	if err := mgr.Send(ctx, "L0SM9cOFvHcCIhw=", map[string]string{"hello": "alice"}); err != nil {
		log.Fatal(err)
	}

	// Broadcast to a whole tenant.
	tenant, _ := conns.ListByTenant(ctx, "acme")
	ids := make([]string, len(tenant))
	for i, c := range tenant {
		ids[i] = c.ConnectionID
	}
	if err := mgr.Broadcast(ctx, ids, map[string]string{"news": "deploy done"}); err != nil {
		log.Fatal(err)
	}

	for _, msg := range gateway.Received("L0SM9cOFvHcCIhw=") {
		fmt.Println(string(msg))
	}
	// Output:
	// {"hello":"alice"}
	// {"news":"deploy done"}
}

// A Broadcast that could not reach everyone returns a *BroadcastError
// naming each failed ID; connections that are gone have been removed from
// the store.
func ExampleBroadcastError() {
	ctx := context.Background()
	gateway := connectiontest.NewServer()
	defer gateway.Close()
	mgr := connection.NewManager(memory.New(), gateway.Client(), gateway.URL)
	defer mgr.Shutdown(ctx)

	gateway.Disconnect("left-already")
	err := mgr.Broadcast(ctx, []string{"here", "left-already"}, "ping")

	var be *connection.BroadcastError
	if errors.As(err, &be) {
		for id, cause := range be.Failed {
			fmt.Println(id, errors.Is(cause, connection.ErrConnectionStale))
		}
	}
	// Output: left-already true
}

// Send's errors wrap sentinels to branch on.
func ExampleManager_Send_errors() {
	ctx := context.Background()
	gateway := connectiontest.NewServer()
	defer gateway.Close()
	mgr := connection.NewManager(memory.New(), gateway.Client(), gateway.URL)
	defer mgr.Shutdown(ctx)

	err := mgr.Send(ctx, "never-connected", "hi")
	fmt.Println(errors.Is(err, connection.ErrConnectionNotFound), errors.Is(err, store.ErrNotFound))
	// Output: true true
}

// A correlation ID set on the context appears on every log line the
// manager writes for that call.
func ExampleWithCorrelationID() {
	ctx := connection.WithCorrelationID(context.Background(), "req-7f3a")
	fmt.Println(connection.CorrelationID(ctx))
	// Output: req-7f3a
}

// Lambda freezes the process between invocations: flush the manager's
// background LastPing writes before the handler returns.
func ExampleManager_Flush() {
	ctx := context.Background()
	gateway := connectiontest.NewServer()
	defer gateway.Close()
	conns := memory.New()
	mgr := connection.NewManager(conns, gateway.Client(), gateway.URL)
	defer mgr.Shutdown(ctx)
	_ = conns.Save(ctx, &store.Connection{ConnectionID: "c1"})

	_ = mgr.Send(ctx, "c1", "done")
	if err := mgr.Flush(ctx); err != nil {
		log.Print(err)
	}
	c, _ := conns.Get(ctx, "c1")
	fmt.Println(!c.LastPing.IsZero())
	// Output: true
}
