package awslambda_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// Each wrapped handler writes one EMF line to stdout per invocation, which
// CloudWatch Logs turns into metrics in the Streamer namespace.
func ExampleEMF() {
	srv := connectiontest.NewServer()
	defer srv.Close()
	st := memory.New()
	mgr := connection.NewManager(st, srv.Client(), srv.URL)
	defer mgr.Shutdown(context.Background())
	conns := streamer.NewConnectHandler(st, streamer.WithAnonymousIdentity(func(streamer.ConnectRequest) streamer.Identity {
		return streamer.Identity{UserID: "anonymous"}
	}))

	emf, err := awslambda.NewEMF(os.Stdout, awslambda.EMFOptions{Manager: mgr, Dimensions: map[string]string{"Stage": "prod"},
		Now: func() time.Time { return time.UnixMilli(1800000000000) }}) // fixed for this example's output
	if err != nil {
		fmt.Println(err)
		return
	}
	h := emf.WebSocket(awslambda.HandlerConnect, awslambda.ConnectHandler(conns, awslambda.WithFlusher(mgr)))
	// lambda.Start(h) on Lambda; here, one $connect.
	_, _ = h(context.Background(), events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{
		ConnectionID: "c1", RouteKey: "$connect", EventType: "CONNECT"}})
	// Output:
	// {"BreakersOpen":0,"BroadcastRecipients":0,"Broadcasts":0,"CircuitOpen":0,"Gone":0,"Handler":"connect","Retries":0,"SendFailures":0,"Sends":0,"Stage":"prod","Throttled":0,"_aws":{"CloudWatchMetrics":[{"Namespace":"Streamer","Dimensions":[["Stage","Handler"],["Stage"]],"Metrics":[{"Name":"Sends","Unit":"Count"},{"Name":"SendFailures","Unit":"Count"},{"Name":"Gone","Unit":"Count"},{"Name":"Throttled","Unit":"Count"},{"Name":"CircuitOpen","Unit":"Count"},{"Name":"Retries","Unit":"Count"},{"Name":"Broadcasts","Unit":"Count"},{"Name":"BroadcastRecipients","Unit":"Count"},{"Name":"BreakersOpen","Unit":"Count"}]}],"Timestamp":1800000000000},"route_key":"$connect"}
}
