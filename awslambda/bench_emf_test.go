package awslambda_test

import (
	"context"
	"io"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// BenchmarkEMFOverhead is what the EMF wrapper adds to one invocation:
// two counter snapshots and one encoded line (the wrapped handler does
// nothing).
func BenchmarkEMFOverhead(b *testing.B) {
	srv := connectiontest.NewServer()
	defer srv.Close()
	st := memory.New()
	mgr := connection.NewManager(st, srv.Client(), srv.URL)
	defer mgr.Shutdown(context.Background())
	emf, err := awslambda.NewEMF(io.Discard, awslambda.EMFOptions{Manager: mgr, Processor: streamer.NewProcessor(st, mgr, streamer.NewActions())})
	if err != nil {
		b.Fatal(err)
	}
	noop := func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	h := emf.WebSocket(awslambda.HandlerRouter, noop)
	ev := events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$default"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(b.Context(), ev); err != nil {
			b.Fatal(err)
		}
	}
}
