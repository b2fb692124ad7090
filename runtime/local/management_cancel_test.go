package local_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/streamer-go/streamer/runtime/local"
)

// managementCalls is an Observer that reports each answered @connections
// request.
type managementCalls struct{ done chan local.ManagementCall }

func (managementCalls) ConnectionOpened(local.ConnectionInfo)              {}
func (managementCalls) ConnectionClosed(local.ConnectionInfo, int, string) {}
func (managementCalls) RouteInvoked(local.RouteInvocation)                 {}
func (o managementCalls) ManagementCalled(m local.ManagementCall)          { o.done <- m }

// TestPostWhoseCallerGaveUpIsNotDelivered: a POST whose caller gives up
// (here: cancels, as an SDK call does at its deadline) before the gateway
// queues its message is not delivered, so it can never reach the client
// after what the caller sends next (a request's final message after a
// late progress frame).
func TestPostWhoseCallerGaveUpIsNotDelivered(t *testing.T) {
	rnd := &script{}
	rec := newRecorder()
	calls := managementCalls{done: make(chan local.ManagementCall, 4)}
	gw := start(t, local.Config{Routes: rec.routes(), Observer: calls,
		Faults: &local.Faults{Latency: time.Hour, LatencyRate: 0.5, Rand: rnd.next}})
	c, id := connect(t, gw, rec)
	api := sdk(t, gw)

	// The first POST waits in the gateway (injected latency) until its
	// caller gives up.
	rnd.push(0.1)
	ctx, cancel := context.WithCancel(ctxT(t))
	posted := make(chan error, 1)
	go func() {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("late")})
		posted <- err
	}()
	for gw.LimitStats().Injected.Delayed == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-posted; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled POST returned %v", err)
	}
	select {
	case <-calls.done: // the gateway is done with it
	case <-time.After(20 * time.Second):
		t.Fatal("the gateway never finished the cancelled POST")
	}

	// The next one is delivered, and is the first thing the client gets.
	if _, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("next")}); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "next" {
		t.Fatalf("client read %q, %v; want only the POST whose caller waited for it", b, err)
	}
}
