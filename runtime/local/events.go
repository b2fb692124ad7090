package local

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/coder/websocket"
)

// requestTimeLayout is requestContext.requestTime's format.
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// requestContext fills what every event carries.
func (g *Gateway) requestContext(c *conn, routeKey, eventType, requestID string, now time.Time) events.APIGatewayWebsocketProxyRequestContext {
	return events.APIGatewayWebsocketProxyRequestContext{
		Stage:     g.cfg.Stage,
		RequestID: requestID,
		Identity: events.APIGatewayRequestIdentity{
			SourceIP:  c.sourceIP,
			UserAgent: c.userAgent,
		},
		APIID:             g.cfg.APIID,
		ConnectedAt:       c.connectedAt.UnixMilli(),
		ConnectionID:      c.id,
		DomainName:        g.domainName(),
		EventType:         eventType,
		ExtendedRequestID: requestID,
		MessageDirection:  "IN",
		RequestTime:       now.UTC().Format(requestTimeLayout),
		RequestTimeEpoch:  now.UnixMilli(),
		RouteKey:          routeKey,
	}
}

// connectEvent is the $connect event: the upgrade request's headers, named
// as the client spelled them, and query string, plus the forwarding
// headers API Gateway adds.
func (g *Gateway) connectEvent(c *conn, r *http.Request, requestID string, now time.Time) events.APIGatewayWebsocketProxyRequest {
	spelling := clientSpelling(r)
	name := func(canonical string) string {
		if s, ok := spelling[canonical]; ok {
			return s
		}
		if s, ok := awsHeaderSpelling[canonical]; ok {
			return s
		}
		return canonical
	}
	multi := make(map[string][]string, len(r.Header)+4)
	for k, v := range r.Header {
		multi[name(k)] = append([]string(nil), v...)
	}
	multi[name("Host")] = []string{r.Host}
	_, port, _ := net.SplitHostPort(g.Addr()) // "[::1]:8080" has colons before the port
	for k, v := range map[string]string{"X-Forwarded-For": c.sourceIP, "X-Forwarded-Port": port, "X-Forwarded-Proto": "http"} {
		if _, ok := r.Header[k]; !ok {
			multi[k] = []string{v}
		}
	}
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:           lastValues(multi),
		MultiValueHeaders: multi,
		RequestContext:    g.requestContext(c, RouteConnect, "CONNECT", requestID, now),
	}
	if q := queryParameters(r.URL.RawQuery); len(q) > 0 {
		ev.MultiValueQueryStringParameters = q
		ev.QueryStringParameters = lastValues(q)
	}
	return ev
}

// queryParameters parses a query string as API Gateway does for its
// events: values decoded ('+' is a space), in the client's order, a name
// without '=' with an empty value, and a pair that does not decode (a
// stray '%', a ';') kept as sent rather than dropped as url.ParseQuery
// drops it.
func queryParameters(raw string) map[string][]string {
	if raw == "" {
		return nil
	}
	out := map[string][]string{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		out[queryUnescape(k)] = append(out[queryUnescape(k)], queryUnescape(v))
	}
	return out
}

func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// messageEvent is a MESSAGE event. Binary frames arrive base64-encoded
// with isBase64Encoded set, as API Gateway delivers them.
func (g *Gateway) messageEvent(c *conn, routeKey, requestID string, typ websocket.MessageType, data []byte, now time.Time) events.APIGatewayWebsocketProxyRequest {
	ev := events.APIGatewayWebsocketProxyRequest{
		RequestContext: g.requestContext(c, routeKey, "MESSAGE", requestID, now),
	}
	ev.RequestContext.MessageID = newID()
	if typ == websocket.MessageBinary {
		ev.Body = base64.StdEncoding.EncodeToString(data)
		ev.IsBase64Encoded = true
	} else {
		ev.Body = string(data)
	}
	return ev
}

// disconnectEvent is the $disconnect event with the close code and reason.
func (g *Gateway) disconnectEvent(c *conn, requestID string, code websocket.StatusCode, reason string, now time.Time) events.APIGatewayWebsocketProxyRequest {
	// API Gateway sends these four headers on $disconnect.
	headers := map[string]string{"Host": g.domainName(), "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
	multi := make(map[string][]string, len(headers))
	for k, v := range headers {
		multi[k] = []string{v}
	}
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:           headers,
		MultiValueHeaders: multi,
		RequestContext:    g.requestContext(c, RouteDisconnect, "DISCONNECT", requestID, now),
	}
	ev.RequestContext.DisconnectStatusCode = int64(code)
	ev.RequestContext.DisconnectReason = &reason
	return ev
}

// awsHeaderSpelling undoes Go's canonical form for the headers whose AWS
// spelling differs, so handlers find Sec-WebSocket-Protocol where Lambda
// puts it.
var awsHeaderSpelling = map[string]string{
	"Sec-Websocket-Key":        "Sec-WebSocket-Key",
	"Sec-Websocket-Version":    "Sec-WebSocket-Version",
	"Sec-Websocket-Extensions": "Sec-WebSocket-Extensions",
	"Sec-Websocket-Protocol":   "Sec-WebSocket-Protocol",
}

func lastValues(m map[string][]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if len(v) > 0 {
			out[k] = v[len(v)-1]
		}
	}
	return out
}

// invoke calls a handler the way API Gateway calls a Lambda integration:
// with the route's integration timeout on its context, the request ID in
// lambdacontext, and a panic turned into an error (the Lambda runtime
// reports it as a failed invocation). size is the inbound message's size,
// for the Observer.
//
// The gateway waits for the answer until the route's integration timeout
// and no longer: past it, invoke returns an error wrapping
// context.DeadlineExceeded while the handler goes on running on its own
// goroutine, as a Lambda function goes on to its own Timeout once API
// Gateway stops waiting. Its late answer is dropped.
func (g *Gateway) invoke(ctx context.Context, h Handler, ev events.APIGatewayWebsocketProxyRequest, size int) (resp events.APIGatewayProxyResponse, err error) {
	timeout := g.integrationTimeout(ev.RequestContext.RouteKey)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: ev.RequestContext.RequestID})
	start := time.Now()
	if g.obs != nil {
		defer func() {
			status := resp.StatusCode
			switch {
			case err != nil:
				status = 500
			case status == 0:
				status = 200
			}
			g.obs.RouteInvoked(RouteInvocation{
				RouteKey:     ev.RequestContext.RouteKey,
				ConnectionID: ev.RequestContext.ConnectionID,
				RequestID:    ev.RequestContext.RequestID,
				Start:        start,
				Duration:     time.Since(start),
				Status:       status,
				Err:          err,
				Bytes:        size,
				Event:        ev,
				Response:     resp,
			})
		}()
	}
	type answer struct {
		resp events.APIGatewayProxyResponse
		err  error
	}
	done := make(chan answer, 1) // buffered: a late answer is left here, unread
	go func() {
		var a answer
		defer func() {
			if p := recover(); p != nil {
				a = answer{err: fmt.Errorf("local: handler for %s panicked: %v", ev.RequestContext.RouteKey, p)}
			}
			done <- a
		}()
		a.resp, a.err = h(ctx, ev)
	}()
	// Only the integration timeout stops the wait: when the connection
	// ends (Close, Shutdown) the handler's context ends too, and the
	// gateway still waits for it, so a $disconnect finishes before
	// Shutdown returns.
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case a := <-done:
		resp, err = a.resp, a.err
		if err == nil && ctx.Err() != nil {
			// Lambda reports a function that ran past its timeout as
			// failed, whatever it returned.
			err = fmt.Errorf("local: handler for %s: %w", ev.RequestContext.RouteKey, ctx.Err())
		}
		return resp, err
	case <-timer.C:
		return events.APIGatewayProxyResponse{}, fmt.Errorf("local: handler for %s: %w", ev.RequestContext.RouteKey, context.DeadlineExceeded)
	}
}

// integrationTimeout is how long the gateway waits for routeKey's handler:
// Config.RouteTimeouts' entry, else Config.IntegrationTimeout.
func (g *Gateway) integrationTimeout(routeKey string) time.Duration {
	if d := g.cfg.RouteTimeouts[routeKey]; d > 0 {
		return d
	}
	return g.cfg.IntegrationTimeout
}

// disconnect runs $disconnect, if the application has it.
func (g *Gateway) disconnect(ctx context.Context, c *conn, code websocket.StatusCode, reason string) {
	h, ok := g.routes[RouteDisconnect]
	if !ok || g.loseDisconnect(c) {
		return
	}
	reqID := g.newRequestID()
	if _, err := g.invoke(ctx, h, g.disconnectEvent(c, reqID, code, reason, time.Now()), 0); err != nil {
		g.log.Error("local: $disconnect handler failed", "connectionId", c.id, "requestId", reqID, "err", err)
	}
}
