package local_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/smithy-go"
	"github.com/coder/websocket"
	"go.uber.org/goleak"

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

// TestDisconnectExactlyOnceInEveryClosePath closes a connection each way
// it can end, then stops the gateway, and counts: one $disconnect for the
// connection, with the status code of the way it ended.
func TestDisconnectExactlyOnceInEveryClosePath(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  local.Config
		// end closes the connection (nothing for the timeouts).
		end  func(t *testing.T, gw *local.Gateway, c *websocket.Conn, id string)
		code websocket.StatusCode
	}{
		{"client close", local.Config{}, func(t *testing.T, _ *local.Gateway, c *websocket.Conn, _ string) {
			c.Close(websocket.StatusNormalClosure, "bye")
		}, 1000},
		{"read error", local.Config{}, func(t *testing.T, _ *local.Gateway, c *websocket.Conn, _ string) {
			c.CloseNow()
		}, 1006},
		{"idle timeout", local.Config{IdleTimeout: 200 * time.Millisecond}, nil, 1001},
		{"max lifetime", local.Config{MaxLifetime: 200 * time.Millisecond}, nil, 1001},
		{"DELETE", local.Config{}, func(t *testing.T, gw *local.Gateway, _ *websocket.Conn, id string) {
			if _, err := sdk(t, gw).DeleteConnection(ctxT(t), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
				t.Fatal(err)
			}
		}, 1000},
		{"message too big", local.Config{}, func(t *testing.T, _ *local.Gateway, c *websocket.Conn, _ string) {
			_ = c.Write(ctxT(t), websocket.MessageBinary, make([]byte, local.MaxMessageBytes+1))
		}, 1009},
		{"Shutdown", local.Config{}, func(t *testing.T, gw *local.Gateway, _ *websocket.Conn, _ string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := gw.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}, 1001},
		{"Close", local.Config{}, func(t *testing.T, gw *local.Gateway, _ *websocket.Conn, _ string) {
			if err := gw.Close(); err != nil {
				t.Fatal(err)
			}
		}, 1006},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			tc.cfg.Routes = rec.routes()
			gw := start(t, tc.cfg)
			c, id := connect(t, gw, rec)
			// The client reads, so it answers the gateway's close frame.
			read := make(chan struct{})
			go func() {
				defer close(read)
				readClose(t, c)
			}()
			if tc.end != nil {
				tc.end(t, gw, c, id)
			}
			ev := next(t, rec.discs)
			if ev.RequestContext.ConnectionID != id || websocket.StatusCode(ev.RequestContext.DisconnectStatusCode) != tc.code {
				t.Errorf("disconnect %s code %d, want %s %d", ev.RequestContext.ConnectionID, ev.RequestContext.DisconnectStatusCode, id, tc.code)
			}
			c.CloseNow()
			<-read
			// Whatever else could still close it (Shutdown, Close) runs
			// now, and must not run $disconnect again.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := gw.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			gw.Close()
			if n := rec.disconnectsOf(id); n != 1 {
				t.Errorf("$disconnect ran %d times", n)
			}
		})
	}
}

// TestDisconnectOnceWhenClosersRace closes each of many connections from
// several sides at once (the client, a DELETE, the idle timeout, Shutdown):
// every connection still gets exactly one $disconnect.
func TestDisconnectOnceWhenClosersRace(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), IdleTimeout: 300 * time.Millisecond})
	api := sdk(t, gw)
	const n = 30
	clients := make([]*websocket.Conn, n)
	ids := make([]string, n)
	for i := range n {
		clients[i], ids[i] = connect(t, gw, rec)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { clients[i].Close(websocket.StatusNormalClosure, "") })
		wg.Go(func() {
			// 410 when another closer was first, or no answer once
			// Shutdown has closed the listener; any other answer is wrong.
			_, err := api.DeleteConnection(context.Background(), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(ids[i])})
			var apiErr smithy.APIError
			var gone *types.GoneException
			if errors.As(err, &apiErr) && !errors.As(err, &gone) {
				t.Errorf("DELETE: %v", err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	wg.Go(func() {
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	wg.Wait()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got := rec.disconnectsOf(id); got != 1 {
			t.Errorf("connection %s: $disconnect ran %d times", id, got)
		}
	}
	if len(rec.discs) != n {
		t.Errorf("%d $disconnect events for %d connections", len(rec.discs), n)
	}
}

// TestConnectionIDsAreUniqueUnderConcurrentConnects dials many clients at
// once: every connection gets its own API Gateway-shaped ID, and every
// event its own request ID.
func TestConnectionIDsAreUniqueUnderConcurrentConnects(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	const n = 200
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, _, err := websocket.Dial(ctxT(t), gw.URL(), nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			t.Cleanup(func() { c.CloseNow() })
		})
	}
	wg.Wait()
	ids, reqIDs := map[string]bool{}, map[string]bool{}
	for range n {
		rc := next(t, rec.connects).RequestContext
		if !idPattern.MatchString(rc.ConnectionID) {
			t.Errorf("connection ID %q", rc.ConnectionID)
		}
		if ids[rc.ConnectionID] || reqIDs[rc.RequestID] {
			t.Fatalf("duplicate connection ID %q or request ID %q", rc.ConnectionID, rc.RequestID)
		}
		ids[rc.ConnectionID], reqIDs[rc.RequestID] = true, true
	}
	if got := gw.ActiveConnections(); got != n {
		t.Errorf("ActiveConnections = %d, want %d", got, n)
	}
}

// lockedBuffer is a log sink safe for the gateway's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInfoLogsCarryNoTokensOrBodies drives every path that logs at info
// level or above (refused origin, refused and failing $connect, a failed
// upgrade, failing and unroutable messages, dropped route responses,
// oversize and refused management calls) with a token in the query string
// and the Authorization header and a marker in every body: none of them
// reaches the log.
func TestInfoLogsCarryNoTokensOrBodies(t *testing.T) {
	const (
		queryToken  = "QUERYTOKENeyJhbGciOi"
		headerToken = "HEADERTOKENeyJhbGciOi"
		body        = "BODYMARKER"
	)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rec := newRecorder()
	routes := rec.routes()
	routes[local.RouteConnect] = func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		rec.record(ev)
		switch ev.QueryStringParameters["case"] {
		case "refuse":
			return events.APIGatewayProxyResponse{StatusCode: 401, Body: body}, nil
		case "fail":
			return events.APIGatewayProxyResponse{}, errors.New("connect failed")
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	routes["fail"] = func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{}, errors.New("handler failed")
	}
	routes["answer"] = rec.handler(body)
	delete(routes, local.RouteDefault)
	gw := start(t, local.Config{Routes: routes, TwoWayRoutes: []string{"answer"}, Logger: logger})
	header := http.Header{"Authorization": {"Bearer " + headerToken}}
	wsURL := func(c string) string { return gw.URL() + "?token=" + queryToken + "&case=" + c }

	// Refused origin, refused $connect, failing $connect.
	for c, h := range map[string]http.Header{
		"origin": {"Authorization": {"Bearer " + headerToken}, "Origin": {"https://evil.example"}},
		"refuse": header, "fail": header,
	} {
		if conn, _, err := websocket.Dial(ctxT(t), wsURL(c), &websocket.DialOptions{HTTPHeader: h}); err == nil {
			conn.CloseNow()
			t.Fatalf("%s: connected", c)
		}
	}
	// An upgrade that $connect accepts but that fails (no Sec-WebSocket-Key).
	req, _ := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(wsURL("upgrade"), "ws"), nil)
	req.Header = header.Clone()
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: tr}).Do(req); err == nil {
		resp.Body.Close()
	}
	next(t, rec.discs)

	// A connection that sends a failing, an unroutable and an answered
	// message, then closes while its answer is still queued.
	conn, _, err := websocket.Dial(ctxT(t), wsURL("ok"), &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	id := ""
	for id == "" {
		if ev := next(t, rec.connects); ev.QueryStringParameters["case"] == "ok" {
			id = ev.RequestContext.ConnectionID
		}
	}
	for _, m := range []string{`{"action":"fail","x":"` + body + `"}`, `{"action":"nope","x":"` + body + `"}`} {
		if err := conn.Write(ctxT(t), websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		readGatewayFrame(t, conn)
	}
	api := sdk(t, gw)
	if _, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	var tooLarge *types.PayloadTooLargeException
	big := []byte(strings.Repeat(body, local.MaxMessageBytes/len(body)+1))
	if _, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: big}); !errors.As(err, &tooLarge) {
		t.Fatalf("oversize post: %v", err)
	}
	if err := conn.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"answer","x":"`+body+`"}`)); err != nil {
		t.Fatal(err)
	}
	conn.Close(websocket.StatusNormalClosure, body)
	next(t, rec.discs)

	// A gateway that checks signatures refuses a wrongly signed post.
	signed := start(t, local.Config{Logger: logger, VerifyCredentials: credentials.NewStaticCredentialsProvider("a", "other", "")})
	_, err = sdk(t, signed).PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(body)})
	var forbidden *types.ForbiddenException
	if !errors.As(err, &forbidden) {
		t.Fatalf("badly signed post: %v", err)
	}

	out := logs.String()
	for _, want := range []string{"origin refused", "$connect refused", "$connect handler failed", "upgrade failed", "handler failed", "management request refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the log; the test no longer covers that path:\n%s", want, out)
		}
	}
	for _, secret := range []string{queryToken, headerToken, body} {
		if strings.Contains(out, secret) {
			t.Errorf("%s appears in the info log:\n%s", secret, out)
		}
	}
}

// TestStopLeavesNoGoroutine: once Shutdown or Close returns, none of the
// gateway's goroutines is left, even with a client that answers the close,
// one that never reads and has a writer blocked on its full socket, and
// the management API's keep-alive connections.
func TestStopLeavesNoGoroutine(t *testing.T) {
	for _, name := range []string{"Shutdown", "Close"} {
		t.Run(name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			rec := newRecorder()
			gw, err := local.New(local.Config{Routes: rec.routes(), OutboundQueue: 2, CloseTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if err := gw.Start(); err != nil {
				t.Fatal(err)
			}
			reader, _ := connect(t, gw, rec)
			read := make(chan struct{})
			go func() {
				defer close(read)
				readClose(t, reader)
			}()
			_, silent := connect(t, gw, rec)
			tr := &http.Transport{}
			api := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
				BaseEndpoint: aws.String(gw.ManagementEndpoint()),
				Region:       "us-east-1",
				Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
				Retryer:      aws.NopRetryer{},
				HTTPClient:   &http.Client{Transport: tr},
			})
			var limit *types.LimitExceededException
			for i := 0; ; i++ {
				_, err := api.PostToConnection(ctxT(t), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(silent), Data: make([]byte, 100*1024)})
				if errors.As(err, &limit) {
					break
				}
				if err != nil || i == 2000 {
					t.Fatalf("post %d to a client that never reads: %v", i, err)
				}
			}

			if name == "Shutdown" {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := gw.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			} else if err := gw.Close(); err != nil {
				t.Fatal(err)
			}
			// What is left to end is the test's: its reader goroutine and
			// the SDK's pooled connections, which the gateway closed.
			<-read
			tr.CloseIdleConnections()
			goleak.VerifyNone(t, before)
			if len(rec.discs) != 2 {
				t.Errorf("%d $disconnect events, want 2", len(rec.discs))
			}
		})
	}
}
