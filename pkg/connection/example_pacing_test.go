package connection_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/memory"
)

// One Limiter for every Manager of the process, since AWS's quota is per
// account and region: here two stages' managers share a budget of 2,000
// calls per second with a burst of 500, adaptive on 429s.
func ExampleWithLimiter() {
	ctx := context.Background()
	prod, beta := connectiontest.NewServer(), connectiontest.NewServer() // stand in for two stages
	defer prod.Close()
	defer beta.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}

	budget := connection.NewLimiter(connection.LimiterConfig{Rate: 2000, Burst: 500})
	conns := memory.New()
	_ = conns.Save(ctx, &store.Connection{ConnectionID: "L0SM9cOFvHcCIhw=", UserID: "alice"})
	prodMgr := connection.NewManager(conns, connection.NewFastClient(cfg, prod.URL), prod.URL, connection.WithLimiter(budget))
	betaMgr := connection.NewManager(conns, connection.NewFastClient(cfg, beta.URL), beta.URL, connection.WithLimiter(budget))
	defer prodMgr.Shutdown(ctx)
	defer betaMgr.Shutdown(ctx)

	_ = prodMgr.Broadcast(ctx, []string{"L0SM9cOFvHcCIhw="}, "to prod")
	_ = betaMgr.Broadcast(ctx, []string{"L0SM9cOFvHcCIhw="}, "to beta")

	s := prodMgr.Stats().Pacing
	fmt.Printf("rate %.0f/s, burst %d, throttle events %d\n", s.Rate, s.Burst, s.ThrottleEventsTotal)
	// Output:
	// rate 2000/s, burst 500, throttle events 0
}

// The lean client satisfies APIGatewayClient, so it can be called directly
// too; its errors are the SDK's (*types.GoneException and the others).
func ExampleNewFastClient() {
	gateway := connectiontest.NewServer()
	defer gateway.Close()
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	client := connection.NewFastClient(cfg, gateway.URL, connection.WithFastPoolSize(64))
	defer client.CloseIdleConnections()

	mgr := connection.NewManager(memory.New(), client, gateway.URL, connection.WithBroadcastWorkers(64))
	defer mgr.Shutdown(context.Background())
	err := mgr.Broadcast(context.Background(), []string{"a=", "b="}, []byte("hi"))
	fmt.Println(err, len(gateway.Received("a=")), len(gateway.Received("b=")))
	// Output:
	// <nil> 1 1
}
