package local_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

// An application's main runs its Lambda handlers in the local gateway: the
// same functions it gives lambda.Start in production.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var api *apigatewaymanagementapi.Client
	onMessage := func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		// Answer through @connections, as in AWS.
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(req.RequestContext.ConnectionID),
			Data:         []byte("you said " + req.Body),
		})
		return events.APIGatewayProxyResponse{StatusCode: 200}, err
	}
	gw, err := local.New(local.Config{
		Addr:   "127.0.0.1:0", // "127.0.0.1:8080" in a real main
		Routes: map[string]local.Handler{local.RouteDefault: onMessage},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		log.Fatal(err)
	}
	log.Printf("WebSocket %s, management API %s", gw.URL(), gw.ManagementEndpoint())
	api = apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(gw.ManagementEndpoint()),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})

	// A client, to show the loop; a real main would wait for <-ctx.Done().
	c, _, err := websocket.Dial(ctx, gw.URL(), nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Write(ctx, websocket.MessageText, []byte("hello"))
	_, reply, _ := c.Read(ctx)
	fmt.Println(string(reply))
	c.Close(websocket.StatusNormalClosure, "")

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(shutdownCtx); err != nil {
		log.Fatal(err)
	}
	// Output: you said hello
}

// A $connect handler decides who may connect, as in API Gateway: a non-2xx
// answer refuses the WebSocket upgrade with that status, so the client
// never connects and $disconnect never runs.
func Example_connectRefusal() {
	authorize := func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		if req.Headers["Authorization"] != "Bearer let-me-in" { // a real app verifies a token
			return events.APIGatewayProxyResponse{StatusCode: 401}, nil
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	gw, err := local.New(local.Config{Routes: map[string]local.Handler{local.RouteConnect: authorize}})
	if err != nil {
		log.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		log.Fatal(err)
	}
	defer gw.Close()
	ctx := context.Background()

	_, resp, err := websocket.Dial(ctx, gw.URL(), nil)
	fmt.Println("without a token:", resp.StatusCode, err != nil)

	c, _, err := websocket.Dial(ctx, gw.URL(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer let-me-in"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("with a token: connected,", gw.ActiveConnections(), "open")
	c.Close(websocket.StatusNormalClosure, "")
	// Output:
	// without a token: 401 true
	// with a token: connected, 1 open
}
