package local_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/local"
)

func TestConnectEventCarriesTheUpgradeRequest(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Stage: "prod", Routes: rec.routes()})
	h := http.Header{}
	h.Set("User-Agent", "streamer-test/1")
	h.Set("X-Custom", "v")
	c, _, err := websocket.Dial(ctxT(t), gw.URL()+"?token=abc&room=1&room=2", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ev := next(t, rec.connects)
	rc := ev.RequestContext
	if rc.RouteKey != "$connect" || rc.EventType != "CONNECT" || rc.Stage != "prod" || rc.MessageDirection != "IN" {
		t.Errorf("routeKey=%q eventType=%q stage=%q direction=%q", rc.RouteKey, rc.EventType, rc.Stage, rc.MessageDirection)
	}
	if !idPattern.MatchString(rc.ConnectionID) || !idPattern.MatchString(rc.RequestID) {
		t.Errorf("connectionId %q / requestId %q not API Gateway-shaped", rc.ConnectionID, rc.RequestID)
	}
	if rc.DomainName != gw.Addr() || rc.APIID != "local" {
		t.Errorf("domainName=%q apiId=%q, want %q and local", rc.DomainName, rc.APIID, gw.Addr())
	}
	if rc.Identity.SourceIP != "127.0.0.1" || rc.Identity.UserAgent != "streamer-test/1" {
		t.Errorf("identity = %+v", rc.Identity)
	}
	if rc.ConnectedAt == 0 || rc.RequestTimeEpoch < rc.ConnectedAt || rc.RequestTime == "" {
		t.Errorf("connectedAt=%d requestTimeEpoch=%d requestTime=%q", rc.ConnectedAt, rc.RequestTimeEpoch, rc.RequestTime)
	}
	if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.RequestTime); err != nil {
		t.Errorf("requestTime %q: %v", rc.RequestTime, err)
	}
	// Go's client writes "Sec-Websocket-Key"; the event keeps that spelling.
	if ev.Headers["X-Custom"] != "v" || ev.Headers["Host"] != gw.Addr() || ev.Headers["Sec-Websocket-Key"] == "" {
		t.Errorf("headers = %v", ev.Headers)
	}
	if ev.QueryStringParameters["token"] != "abc" || ev.QueryStringParameters["room"] != "2" {
		t.Errorf("query = %v", ev.QueryStringParameters)
	}
	if got := ev.MultiValueQueryStringParameters["room"]; len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("multi-value query room = %v", got)
	}
}

func TestConnectRefusalUsesTheHandlersStatus(t *testing.T) {
	var disconnects []string
	for _, tc := range []struct {
		name   string
		h      local.Handler
		status int
	}{
		{"401", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 401}, nil
		}, 401},
		{"403", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 403, Body: `{"message":"no"}`}, nil
		}, 403},
		{"error", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		}, 500},
		{"panic", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			panic("boom")
		}, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			gw := start(t, local.Config{Routes: map[string]local.Handler{
				local.RouteConnect:    tc.h,
				local.RouteDisconnect: rec.handler(""),
				local.RouteDefault:    rec.handler(""),
			}})
			_, resp, err := websocket.Dial(ctxT(t), gw.URL(), nil)
			if err == nil {
				t.Fatal("dial succeeded, want refusal")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("response = %v, want status %d", resp, tc.status)
			}
			if resp.Header.Get("X-Amzn-Errortype") == "" {
				t.Error("refusal without X-Amzn-Errortype")
			}
			if gw.ActiveConnections() != 0 {
				t.Errorf("ActiveConnections = %d after refusal", gw.ActiveConnections())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := gw.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			for range len(rec.discs) {
				disconnects = append(disconnects, (<-rec.discs).RequestContext.ConnectionID)
			}
		})
	}
	if len(disconnects) != 0 {
		t.Errorf("$disconnect ran for refused connections: %v", disconnects)
	}
}

func TestConnectSubprotocolChosenByHandler(t *testing.T) {
	gw := start(t, local.Config{Routes: map[string]local.Handler{
		local.RouteConnect: func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": "streamer.v1"}}, nil
		},
	}})
	c := dial(t, gw, &websocket.DialOptions{Subprotocols: []string{"other", "streamer.v1"}})
	if c.Subprotocol() != "streamer.v1" {
		t.Errorf("subprotocol = %q", c.Subprotocol())
	}
}

func TestDisconnectOnceWhenClientCloses(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	ev := next(t, rec.discs)
	rc := ev.RequestContext
	if rc.ConnectionID != id || rc.RouteKey != "$disconnect" || rc.EventType != "DISCONNECT" {
		t.Errorf("disconnect event %+v", rc)
	}
	if rc.DisconnectStatusCode != 1000 || rc.DisconnectReason == nil || *rc.DisconnectReason != "bye" {
		t.Errorf("disconnect status %d reason %v, want 1000 bye", rc.DisconnectStatusCode, rc.DisconnectReason)
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

func TestDisconnectWhenConnectionDropsWithoutCloseFrame(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	c.CloseNow()
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1006 {
		t.Errorf("disconnect %s code %d, want %s 1006", ev.RequestContext.ConnectionID, ev.RequestContext.DisconnectStatusCode, id)
	}
}

func TestIdleTimeoutClosesWith1001(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), IdleTimeout: 300 * time.Millisecond})
	c, id := connect(t, gw, rec)
	code, reason := readClose(t, c)
	if code != websocket.StatusGoingAway {
		t.Errorf("client saw close %d %q, want 1001", code, reason)
	}
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1001 || *ev.RequestContext.DisconnectReason != "Going away" {
		t.Errorf("disconnect %+v", ev.RequestContext)
	}
}

func TestIdleTimeoutIsResetByMessages(t *testing.T) {
	rec := newRecorder()
	// The idle timeout is 20 times the gap between messages, so only a
	// stall of the test process of nearly 2 s could close the connection.
	gw := start(t, local.Config{Routes: rec.routes(), IdleTimeout: 2 * time.Second})
	c, _ := connect(t, gw, rec)
	// Messages every 100 ms for 2 idle periods keep the connection open:
	// every one of them reaches $default.
	for i := range 40 {
		if err := c.Write(ctxT(t), websocket.MessageText, []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("write %d: %v (connection closed while active)", i, err)
		}
		if ev := next(t, rec.messages); ev.Body != strconv.Itoa(i) {
			t.Fatalf("message %d: body %q", i, ev.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rec.discs) != 0 {
		t.Fatal("active connection was closed as idle")
	}
}

func TestMaxLifetimeClosesWith1001(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes(), MaxLifetime: 300 * time.Millisecond})
	c, id := connect(t, gw, rec)
	// Activity does not extend the lifetime: the client pings (and reads
	// the pongs) until the gateway closes the connection.
	alive := c.CloseRead(context.Background())
	go func() {
		for c.Ping(alive) == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1001 {
		t.Errorf("disconnect %+v", ev.RequestContext)
	}
}

func TestShutdownClosesEverySocketWith1001(t *testing.T) {
	rec := newRecorder()
	gw, err := local.New(local.Config{Routes: rec.routes()})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var clients []*websocket.Conn
	ids := map[string]bool{}
	for range n {
		c, id := connect(t, gw, rec)
		clients = append(clients, c)
		ids[id] = true
	}
	codes := make(chan websocket.StatusCode, n)
	for _, c := range clients {
		go func() {
			_, _, err := c.Read(context.Background())
			codes <- websocket.CloseStatus(err)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if code := <-codes; code != websocket.StatusGoingAway {
			t.Errorf("client saw %d, want 1001", code)
		}
	}
	// Shutdown waited for every $disconnect.
	if len(rec.discs) != n {
		t.Fatalf("%d $disconnect events after Shutdown, want %d", len(rec.discs), n)
	}
	for range n {
		ev := <-rec.discs
		if !ids[ev.RequestContext.ConnectionID] || ev.RequestContext.DisconnectStatusCode != 1001 {
			t.Errorf("disconnect %+v", ev.RequestContext)
		}
		delete(ids, ev.RequestContext.ConnectionID)
	}
	if err := gw.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := gw.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
	if _, _, err := websocket.Dial(ctxT(t), gw.URL(), nil); err == nil {
		t.Error("dial after Shutdown succeeded")
	}
}

func TestCloseStopsAtOnceAndStillRunsDisconnect(t *testing.T) {
	rec := newRecorder()
	gw, err := local.New(local.Config{Routes: rec.routes()})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	_, id := connect(t, gw, rec)
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := rec.disconnectsOf(id); n != 1 {
		t.Errorf("$disconnect ran %d times", n)
	}
}

func TestRouteSelection(t *testing.T) {
	rec := newRecorder()
	routes := rec.routes()
	for _, k := range []string{"echo", "42", "true", "1.50"} {
		routes[k] = rec.handler("")
	}
	gw := start(t, local.Config{Routes: routes})
	c, id := connect(t, gw, rec)
	for _, tc := range []struct {
		typ   websocket.MessageType
		body  string
		route string
	}{
		{websocket.MessageText, `{"action":"echo","x":1}`, "echo"},
		{websocket.MessageText, `{"action":42}`, "42"},
		{websocket.MessageText, `{"action":1.50}`, "1.50"},
		{websocket.MessageText, `{"action":true}`, "true"},
		{websocket.MessageText, `{"action":"nope"}`, "$default"},
		{websocket.MessageText, `{"action":null}`, "$default"},
		{websocket.MessageText, `{"other":"echo"}`, "$default"},
		{websocket.MessageText, `not json {"action":"echo"}`, "$default"},
		{websocket.MessageText, `{"action":"echo"} trailing`, "$default"},
		{websocket.MessageText, `{"action":"$connect"}`, "$default"},
		{websocket.MessageBinary, `{"action":"echo"}`, "$default"},
	} {
		if err := c.Write(ctxT(t), tc.typ, []byte(tc.body)); err != nil {
			t.Fatal(err)
		}
		ev := next(t, rec.messages)
		rc := ev.RequestContext
		if rc.RouteKey != tc.route {
			t.Errorf("%s: route %q, want %q", tc.body, rc.RouteKey, tc.route)
		}
		if rc.EventType != "MESSAGE" || rc.ConnectionID != id || rc.MessageID == nil || rc.MessageDirection != "IN" {
			t.Errorf("%s: event %+v", tc.body, rc)
		}
		body := ev.Body
		if tc.typ == websocket.MessageBinary {
			if !ev.IsBase64Encoded {
				t.Errorf("binary message without isBase64Encoded")
			}
			b, err := base64.StdEncoding.DecodeString(ev.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = string(b)
		} else if ev.IsBase64Encoded {
			t.Errorf("%s: text message marked base64", tc.body)
		}
		if body != tc.body {
			t.Errorf("body %q, want %q", body, tc.body)
		}
	}
}

func TestRouteSelectionNestedPath(t *testing.T) {
	rec := newRecorder()
	routes := rec.routes()
	routes["chat"] = rec.handler("")
	routes[`{"a":1}`] = rec.handler("")
	gw := start(t, local.Config{Routes: routes, RouteSelectionExpression: "${request.body.meta.kind}"})
	c, _ := connect(t, gw, rec)
	for body, want := range map[string]string{
		`{"meta":{"kind":"chat"}}`:        "chat",
		`{"meta":{"kind":{"a":1}}}`:       `{"a":1}`,
		`{"meta":"chat"}`:                 "$default",
		`{"action":"chat"}`:               "$default",
		`{"meta":{"kind":"chat"},"x":[]}`: "chat",
	} {
		if err := c.Write(ctxT(t), websocket.MessageText, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if got := next(t, rec.messages).RequestContext.RouteKey; got != want {
			t.Errorf("%s → %q, want %q", body, got, want)
		}
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []local.Config{
		{RouteSelectionExpression: "$request.header.x"},
		{RouteSelectionExpression: "$request.body."},
		{RouteSelectionExpression: "$request.body.a..b"},
		{Stage: "a/b"},
		{IdleTimeout: -1},
		{RouteTimeouts: map[string]time.Duration{"slow": -1}},
		{AllowedOrigins: []string{"*", "x"}},
		{AllowedOrigins: []string{"[bad"}},
		{Routes: map[string]local.Handler{"x": nil}},
	} {
		if _, err := local.New(cfg); !errors.Is(err, local.ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// gatewayFrame is API Gateway's own message to a client.
type gatewayFrame struct {
	Message      string `json:"message"`
	ConnectionID string `json:"connectionId"`
	RequestID    string `json:"requestId"`
}

func readGatewayFrame(t *testing.T, c *websocket.Conn) gatewayFrame {
	t.Helper()
	_, b, err := c.Read(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var f gatewayFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return f
}

func TestNoDefaultRouteAnswersForbiddenAndStaysOpen(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{
		Routes:       map[string]local.Handler{local.RouteConnect: rec.handler(""), "echo": rec.handler("pong")},
		TwoWayRoutes: []string{"echo"},
	})
	c, id := connect(t, gw, rec)
	for _, msg := range []string{`{"action":"nope"}`, "plain text"} {
		if err := c.Write(ctxT(t), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		f := readGatewayFrame(t, c)
		if f.Message != "Forbidden" || f.ConnectionID != id || !idPattern.MatchString(f.RequestID) {
			t.Errorf("frame %+v", f)
		}
	}
	// Still open: a routed message works.
	if err := c.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"echo"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctxT(t)); err != nil || string(b) != "pong" {
		t.Fatalf("after Forbidden: %q, %v", b, err)
	}
}

func TestHandlerFailureSendsInternalServerError(t *testing.T) {
	rec := newRecorder()
	routes := rec.routes()
	routes["fail"] = func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{}, errors.New("boom")
	}
	routes["panic"] = func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		panic("boom")
	}
	routes["slow"] = func(ctx context.Context, _ events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		<-ctx.Done()
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	gw := start(t, local.Config{Routes: routes, IntegrationTimeout: 200 * time.Millisecond})
	c, id := connect(t, gw, rec)
	for action, want := range map[string]string{"fail": "Internal server error", "panic": "Internal server error", "slow": "Endpoint request timed out"} {
		if err := c.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"`+action+`"}`)); err != nil {
			t.Fatal(err)
		}
		if f := readGatewayFrame(t, c); f.Message != want || f.ConnectionID != id {
			t.Errorf("%s: frame %+v, want %q", action, f, want)
		}
	}
}

func TestRouteResponsesOnlyOnTwoWayRoutes(t *testing.T) {
	rec := newRecorder()
	routes := rec.routes()
	routes["oneway"] = rec.handler("dropped")
	routes["twoway"] = rec.handler("answer")
	routes["bin"] = func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: base64.StdEncoding.EncodeToString([]byte{0xff, 0x00}), IsBase64Encoded: true}, nil
	}
	// One message at a time, so the answers come in the order the messages
	// were sent (the gateway, like API Gateway, otherwise handles them
	// concurrently) and the first answer proves "dropped" was not sent.
	gw := start(t, local.Config{Routes: routes, TwoWayRoutes: []string{"twoway", "bin"}, MaxMessagesInFlight: 1})
	c, _ := connect(t, gw, rec)
	for _, a := range []string{"oneway", "twoway", "bin"} {
		if err := c.Write(ctxT(t), websocket.MessageText, []byte(`{"action":"`+a+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	typ, b, err := c.Read(ctxT(t))
	if err != nil || typ != websocket.MessageText || string(b) != "answer" {
		t.Fatalf("first message %v %q %v, want text answer", typ, b, err)
	}
	typ, b, err = c.Read(ctxT(t))
	if err != nil || typ != websocket.MessageBinary || string(b) != "\xff\x00" {
		t.Fatalf("second message %v %q %v, want binary ff00", typ, b, err)
	}
}

func TestInboundOverLimitClosesWith1009(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	c, id := connect(t, gw, rec)
	exact := strings.Repeat("a", local.MaxMessageBytes)
	if err := c.Write(ctxT(t), websocket.MessageText, []byte(exact)); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, rec.messages); len(ev.Body) != local.MaxMessageBytes {
		t.Fatalf("128 KiB message arrived with %d bytes", len(ev.Body))
	}
	// One byte more closes the socket; the write itself may or may not
	// fail depending on when the close arrives.
	_ = c.Write(ctxT(t), websocket.MessageText, []byte(exact+"a"))
	if code, _ := readClose(t, c); code != websocket.StatusMessageTooBig {
		t.Errorf("client saw close %d, want 1009", code)
	}
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1009 {
		t.Errorf("disconnect %+v", ev.RequestContext)
	}
}

func TestOriginCheck(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	dialOrigin := func(gw *local.Gateway, origin string) (int, error) {
		h := http.Header{}
		h.Set("Origin", origin)
		c, resp, err := websocket.Dial(ctxT(t), gw.URL(), &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			c.Close(websocket.StatusNormalClosure, "")
			return http.StatusSwitchingProtocols, nil
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	for origin, want := range map[string]int{
		"http://localhost:3000": 101,
		"http://localhost":      101,
		"http://127.0.0.1:5173": 101,
		"http://[::1]:8080":     101,
		"https://evil.example":  403,
		"http://localhost.evil": 403,
	} {
		if got, err := dialOrigin(gw, origin); got != want {
			t.Errorf("origin %s: status %d (%v), want %d", origin, got, err, want)
		}
	}
	connects := len(rec.connects)
	if connects != 4 {
		t.Errorf("$connect ran %d times, want 4 (never for refused origins)", connects)
	}

	gw2 := start(t, local.Config{AllowedOrigins: []string{"app.example.com", "https://*.example.org"}})
	for origin, want := range map[string]int{
		"http://app.example.com":    101,
		"https://x.example.org":     101,
		"http://x.example.org":      403,
		"http://localhost:3000":     403,
		"https://app.example.com:1": 403,
	} {
		if got, err := dialOrigin(gw2, origin); got != want {
			t.Errorf("origin %s: status %d (%v), want %d", origin, got, err, want)
		}
	}
}

func TestConnectionIDsAreUnique(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	seen := map[string]bool{}
	for range 50 {
		_, id := connect(t, gw, rec)
		if !idPattern.MatchString(id) {
			t.Errorf("id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	if gw.ActiveConnections() != 50 {
		t.Errorf("ActiveConnections = %d", gw.ActiveConnections())
	}
}

func TestPlainHTTPOnWebSocketPath(t *testing.T) {
	rec := newRecorder()
	gw := start(t, local.Config{Routes: rec.routes()})
	resp, err := http.Get(gw.ManagementEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || len(rec.connects) != 0 {
		t.Errorf("plain GET: %d, $connect ran %d times", resp.StatusCode, len(rec.connects))
	}
	resp, err = http.Get("http://" + gw.Addr() + "/otherstage")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "ForbiddenException" {
		t.Errorf("wrong stage: %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestShutdownDuringConnect: an upgrade whose $connect is still running
// when Shutdown starts is refused once $connect returns, and the app gets
// the $disconnect that matches its $connect.
func TestShutdownDuringConnect(t *testing.T) {
	rec := newRecorder()
	entered, release := make(chan string, 1), make(chan struct{})
	gw, err := local.New(local.Config{Routes: map[string]local.Handler{
		local.RouteConnect: func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			entered <- ev.RequestContext.ConnectionID
			<-release
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		},
		local.RouteDisconnect: rec.handler(""),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	type dialResult struct {
		status int
		err    error
	}
	dialed := make(chan dialResult, 1)
	go func() {
		c, resp, err := websocket.Dial(context.Background(), gw.URL(), nil)
		if err == nil {
			c.CloseNow()
		}
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		dialed <- dialResult{status, err}
	}()
	id := <-entered
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- gw.Shutdown(ctx)
	}()
	// Shutdown has begun once the listener refuses new connections.
	for {
		c, err := net.Dial("tcp", gw.Addr())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if r := <-dialed; r.err == nil || r.status != http.StatusServiceUnavailable {
		t.Errorf("dial during shutdown: status %d, %v; want 503", r.status, r.err)
	}
	if err := <-shutdown; err != nil {
		t.Fatal(err)
	}
	ev := next(t, rec.discs)
	if ev.RequestContext.ConnectionID != id || ev.RequestContext.DisconnectStatusCode != 1001 {
		t.Errorf("disconnect %+v", ev.RequestContext)
	}
}

// A client that never reads never answers the close frame. Shutdown drops
// it after CloseTimeout instead of waiting on coder/websocket's fixed 5 s
// handshake, and its $disconnect still runs with a live context, so the
// app can delete the connection. The deadline below sits well above the
// 100 ms CloseTimeout and well below the 5 s that a regression would take.
func TestShutdownDropsClientsThatNeverAnswerTheClose(t *testing.T) {
	rec := newRecorder()
	discCtxErr := make(chan error, 2)
	routes := rec.routes()
	routes[local.RouteDisconnect] = func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		discCtxErr <- ctx.Err()
		rec.record(ev)
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	gw, err := local.New(local.Config{Routes: routes, CloseTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	connect(t, gw, rec) // neither client ever reads
	connect(t, gw, rec)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with silent clients: %v", err)
	}
	for range 2 {
		if err := <-discCtxErr; err != nil {
			t.Errorf("$disconnect ran with a cancelled context: %v", err)
		}
		if ev := <-rec.discs; ev.RequestContext.DisconnectStatusCode != 1001 {
			t.Errorf("disconnect status %d, want 1001", ev.RequestContext.DisconnectStatusCode)
		}
	}
}
