package channel_test

import (
	"context"
	"fmt"
	"time"

	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// A Service answers the router's channel messages and is told about
// disconnects; the server publishes from anywhere with In(tenant).Publish.
// A connectiontest.Recorder stands in for the connection.Manager here.
func Example() {
	ctx := context.Background()
	out := &connectiontest.Recorder{} // in production: a *connection.Manager
	chans := channel.New(channel.NewMemoryStore(), out,
		channel.WithNamespace("chat", channel.Namespace{HistorySize: 100, HistoryTTL: 10 * time.Minute, Presence: true, ClientPublish: true}))
	defer chans.Shutdown(ctx)

	st := memory.New()
	router := streamer.NewRouter(st, out, streamer.WithConnectionStore(st), streamer.WithChannels(chans))
	connect := streamer.NewConnectHandler(st, streamer.WithConnectionCleanup(chans))
	_ = connect // serve it on $connect/$disconnect (awslambda.ConnectHandler, DisconnectHandler)

	// A connection (anonymous here, so in tenant "") subscribes...
	if err := connect.Connect(ctx, streamer.ConnectRequest{ConnectionID: "conn-1"}); err != nil {
		panic(err)
	}
	if err := router.HandleMessage(ctx, streamer.Message{ConnectionID: "conn-1", Body: []byte(`{"type":"subscribe","id":"s1","channel":"chat:lobby"}`)}); err != nil {
		panic(err)
	}
	// ...and the server publishes to it.
	offset, err := chans.Publish(ctx, "chat:lobby", map[string]string{"text": "welcome"})
	if err != nil {
		panic(err)
	}
	if err := chans.Flush(ctx); err != nil { // fan-out runs in the background
		panic(err)
	}
	fmt.Println("published offset", offset)
	for _, m := range out.To("conn-1") {
		fmt.Println(string(m)[:40])
	}
	// Output:
	// published offset 1
	// {"v":1,"type":"subscribed","request_id":
	// {"v":1,"type":"publication","channel":"c
}

// Private channels: "user:{id}" is usable by user {id} only, so the server
// reaches all of one user's connections by publishing there.
func ExampleTenant_Publish() {
	ctx := context.Background()
	chans := channel.New(channel.NewMemoryStore(), &connectiontest.Recorder{})
	defer chans.Shutdown(ctx)
	off, err := chans.In("acme").Publish(ctx, "user:alice", map[string]string{"notice": "report ready"})
	fmt.Println(off, err)
	// Output: 1 <nil>
}

// An Authorizer decides subscribe, publish and presence per identity and
// channel, after the built-in user-channel rule.
func ExampleWithAuthorizer() {
	onlyStaff := channel.WithAuthorizer(func(ctx context.Context, a channel.Access) error {
		if a.Namespace == "staff" && !a.Identity.HasPermission("staff") {
			return streamer.NewClientError(protocol.CodeForbidden, "staff only")
		}
		return nil
	})
	chans := channel.New(channel.NewMemoryStore(), &connectiontest.Recorder{},
		channel.WithNamespace("staff", channel.Namespace{HistorySize: 10}), onlyStaff)
	defer chans.Shutdown(context.Background())
	_, err := chans.ServeChannel(context.Background(), &streamer.ChannelRequest{
		Type: protocol.TypeSubscribe, ID: "s", Channel: "staff:ops", ConnectionID: "c",
		Identity: streamer.Identity{UserID: "bob"},
	})
	fmt.Println(err)
	// Output: streamer: FORBIDDEN: staff only
}
