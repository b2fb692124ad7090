package local_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/streamer-go/streamer/runtime/local"
)

// TestDisconnectWhenAHalfClosedClientIsBehindOnWrites: a client that
// stops reading and then half-closes its socket (its read side of the
// gateway ends with EOF while the gateway's writer is blocked on the full
// socket) still gets its $disconnect at once. The gateway must drop the
// socket before it waits for its writer, or the writer, and with it the
// $disconnect, would wait until the client dies.
func TestDisconnectWhenAHalfClosedClientIsBehindOnWrites(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), OutboundQueue: 2})
	raw := dialRaw(t, gw)
	id := next(t, rec.connects).RequestContext.ConnectionID
	api := sdk(t, gw)
	msg := make([]byte, 100*1024)
	// Fill the socket buffers until the queue behind the blocked writer
	// is full too.
	var limit *types.LimitExceededException
	for i := 0; ; i++ {
		_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: msg})
		if errors.As(err, &limit) {
			break
		}
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		if i == 2000 {
			t.Fatal("no LimitExceededException after 2000 posts to a client that never reads")
		}
	}
	if err := raw.conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1006 {
		t.Errorf("disconnect %s code %d, want %s 1006", ev.RequestContext.ConnectionID, ev.RequestContext.DisconnectStatusCode, id)
	}
	var gone *types.GoneException
	if _, err := api.GetConnection(ctxT(t), &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); !errors.As(err, &gone) {
		t.Errorf("GetConnection after the disconnect: %v, want GoneException", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rec.disconnectsOf(id); n != 1 {
		t.Errorf("$disconnect ran %d times", n)
	}
}
