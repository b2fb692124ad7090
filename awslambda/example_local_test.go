package awslambda_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

// The same handlers a Lambda deployment runs, served by the local runtime
// on one machine, as `streamer dev` does: memory store, the connection
// Manager posting to the local @connections API, and the in-process worker
// pool instead of the DynamoDB stream.
func ExampleRouterHandler_localRuntime() {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String() + "/" + local.DefaultStage

	st := memory.New()
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	mgr := connection.NewManager(st, connection.NewFastClient(awsCfg, endpoint), endpoint)

	queue := streamer.NewQueue(streamer.DefaultQueueSize) // the router hands the in-process pool what it stores
	router := streamer.NewRouter(st, mgr, streamer.WithConnectionStore(st), streamer.WithQueue(queue))
	router.HandleFunc("echo", func(ctx context.Context, req *streamer.Request) (any, error) {
		return req.Payload, nil
	})
	router.HandleAsyncFunc("report", func(ctx context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		_ = p.Report(100, "done")
		return "finished", nil
	})
	proc := streamer.NewProcessor(st, mgr, router.Actions(), streamer.WithProcessorConnections(st), streamer.WithProcessorQueue(queue))
	if err := proc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	conns := streamer.NewConnectHandler(st) // no verifier: anonymous connections

	gw, err := local.New(local.Config{Routes: map[string]local.Handler{
		local.RouteConnect:    awslambda.ConnectHandler(conns, awslambda.WithFlusher(mgr)),
		local.RouteDisconnect: awslambda.DisconnectHandler(conns, awslambda.WithFlusher(mgr)),
		local.RouteDefault:    awslambda.RouterHandler(router, awslambda.WithFlusher(mgr)),
	}})
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()

	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/"+local.DefaultStage, nil)
	if err != nil {
		log.Fatal(err)
	}
	send := func(msg string) {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			log.Fatal(err)
		}
	}
	read := func() string {
		_, data, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		return string(data)
	}
	send(`{"type":"request","id":"1","action":"echo","payload":{"text":"hi"}}`)
	fmt.Println(read())
	send(`{"type":"ping"}`)
	fmt.Println(read())
	_ = c.Close(websocket.StatusNormalClosure, "")

	// Stop in this order: no new messages, then no running handlers, then
	// no pending sends.
	_ = gw.Shutdown(ctx)
	<-served
	_ = proc.Shutdown(ctx)
	_ = mgr.Shutdown(ctx)
	// Output:
	// {"v":1,"type":"response","request_id":"1","data":{"text":"hi"}}
	// {"v":1,"type":"pong"}
}
