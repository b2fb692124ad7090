package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// routeSelector evaluates a route selection expression,
// $request.body.<path>, against a message body.
type routeSelector struct {
	path []string
}

// parseRouteSelection accepts $request.body.a.b and its ${request.body.a.b}
// spelling.
func parseRouteSelection(expr string) (routeSelector, error) {
	e := expr
	if strings.HasPrefix(e, "${") && strings.HasSuffix(e, "}") {
		e = "$" + e[2:len(e)-1]
	}
	rest, ok := strings.CutPrefix(e, "$request.body.")
	if !ok || rest == "" {
		return routeSelector{}, fmt.Errorf("%w: route selection expression %q: want $request.body.<path>", ErrInvalidConfig, expr)
	}
	path := strings.Split(rest, ".")
	for _, p := range path {
		if p == "" {
			return routeSelector{}, fmt.Errorf("%w: route selection expression %q: empty path segment", ErrInvalidConfig, expr)
		}
	}
	return routeSelector{path: path}, nil
}

// routeKey returns the stringified value at the selector's path, and false
// when the body is not JSON or the path is absent or null.
func (s routeSelector) routeKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a numeric route key keeps its literal text
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	// Decode stops after the first value: anything but whitespace after
	// it makes the message non-JSON, which API Gateway routes to $default.
	if _, err := dec.Token(); err != io.EOF {
		return "", false
	}
	for _, p := range s.path {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = obj[p]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	default: // objects and arrays: their compact JSON text
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
}

// gatewayMessage is what API Gateway itself sends a client when it cannot
// route or run a message, e.g.
// {"message": "Forbidden", "connectionId":"L0SM9cOFvHcCIhw=", "requestId":"L0SNDFJ-vHcFq5g="}.
// It is API Gateway's wire format, not Streamer's protocol.
type gatewayMessage struct {
	Message      string `json:"message"`
	ConnectionID string `json:"connectionId"`
	RequestID    string `json:"requestId"`
}

// dispatch routes one inbound message and runs its handler. It runs on a
// goroutine of its own (see readLoop), so one connection's messages are
// handled concurrently and their responses go out in the order the
// handlers finish.
func (g *Gateway) dispatch(ctx context.Context, c *conn, typ websocket.MessageType, data []byte) {
	reqID := g.newRequestID()
	routeKey := RouteDefault
	if typ == websocket.MessageText {
		if k, ok := g.selector.routeKey(data); ok {
			if _, has := g.routes[k]; has && k != RouteConnect && k != RouteDisconnect {
				routeKey = k
			}
		}
	}
	h, ok := g.routes[routeKey]
	if !ok {
		g.sendGatewayMessage(ctx, c, "Forbidden", reqID)
		return
	}
	resp, err := g.invoke(ctx, h, g.messageEvent(c, routeKey, reqID, typ, data, time.Now()), len(data))
	if err != nil {
		g.log.Error("local: handler failed", "connectionId", c.id, "requestId", reqID, "routeKey", routeKey, "err", err)
		msg := "Internal server error"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "Endpoint request timed out"
		}
		g.sendGatewayMessage(ctx, c, msg, reqID)
		return
	}
	if !g.twoWay[routeKey] || resp.Body == "" {
		return
	}
	out, mt := []byte(resp.Body), websocket.MessageText
	if resp.IsBase64Encoded {
		if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			g.log.Error("local: route response is not base64", "connectionId", c.id, "requestId", reqID, "err", err)
			g.sendGatewayMessage(ctx, c, "Internal server error", reqID)
			return
		}
		mt = websocket.MessageBinary
	}
	if err := c.enqueue(ctx, mt, out); err != nil {
		g.log.Info("local: route response dropped", "connectionId", c.id, "requestId", reqID, "err", err)
	}
}

func (g *Gateway) sendGatewayMessage(ctx context.Context, c *conn, msg, reqID string) {
	b, _ := json.Marshal(gatewayMessage{Message: msg, ConnectionID: c.id, RequestID: reqID})
	if err := c.enqueue(ctx, websocket.MessageText, b); err != nil {
		g.log.Info("local: gateway message dropped", "connectionId", c.id, "requestId", reqID, "err", err)
	}
}
