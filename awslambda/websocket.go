package awslambda

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/pkg/streamer"
)

// WebSocketHandler is the shape of an API Gateway WebSocket Lambda handler.
// The local runtime (runtime/local.Handler) takes the same shape.
type WebSocketHandler = func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

func status(code int) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: code}
}

// ConnectRequest converts a $connect event.
func ConnectRequest(ev events.APIGatewayWebsocketProxyRequest) streamer.ConnectRequest {
	rc := ev.RequestContext
	return streamer.ConnectRequest{
		ConnectionID:     rc.ConnectionID,
		Headers:          ev.Headers,
		Query:            ev.QueryStringParameters,
		DomainName:       rc.DomainName,
		Stage:            rc.Stage,
		ConnectedAt:      millis(rc.ConnectedAt),
		SourceIP:         rc.Identity.SourceIP,
		UserAgent:        rc.Identity.UserAgent,
		GatewayRequestID: rc.RequestID,
	}
}

// DisconnectRequest converts a $disconnect event.
func DisconnectRequest(ev events.APIGatewayWebsocketProxyRequest) streamer.DisconnectRequest {
	rc := ev.RequestContext
	r := streamer.DisconnectRequest{
		ConnectionID:     rc.ConnectionID,
		StatusCode:       int(rc.DisconnectStatusCode),
		GatewayRequestID: rc.RequestID,
	}
	if rc.DisconnectReason != nil {
		r.Reason = *rc.DisconnectReason
	}
	return r
}

// errBadBody means a MESSAGE event claimed a base64 body that is not.
var errBadBody = errors.New("awslambda: message body is not valid base64")

// Message converts a MESSAGE event. Binary frames arrive base64-encoded
// with isBase64Encoded set; they are decoded so the router sees the bytes
// the client sent.
func Message(ev events.APIGatewayWebsocketProxyRequest) (streamer.Message, error) {
	rc := ev.RequestContext
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return streamer.Message{}, errBadBody
		}
		body = b
	}
	return streamer.Message{
		ConnectionID:     rc.ConnectionID,
		GatewayRequestID: rc.RequestID,
		Body:             body,
		ReceivedAt:       millis(rc.RequestTimeEpoch),
		DomainName:       rc.DomainName,
		Stage:            rc.Stage,
	}, nil
}

func millis(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// ConnectHandler returns the $connect handler: 200 when the connection is
// stored, 401 (empty body, nothing stored) when the token is missing or
// invalid, 500 when the store fails. No detail reaches the client.
func ConnectHandler(h *streamer.ConnectHandler, opts ...Option) WebSocketHandler {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		ctx = withCorrelation(ctx, ev)
		defer cfg.flush(ctx)
		err := h.Connect(ctx, ConnectRequest(ev))
		switch {
		case err == nil:
			return status(http.StatusOK), nil
		case errors.Is(err, streamer.ErrUnauthorized):
			return status(http.StatusUnauthorized), nil
		default:
			cfg.log.ErrorContext(ctx, "connect failed", slog.String("connection_id", ev.RequestContext.ConnectionID), slog.Any("error", err))
			return status(http.StatusInternalServerError), nil
		}
	}
}

// DisconnectHandler returns the $disconnect handler. API Gateway ignores
// its answer; a failure is logged and the record expires by its TTL.
func DisconnectHandler(h *streamer.ConnectHandler, opts ...Option) WebSocketHandler {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		ctx = withCorrelation(ctx, ev)
		defer cfg.flush(ctx)
		if err := h.Disconnect(ctx, DisconnectRequest(ev)); err != nil {
			cfg.log.ErrorContext(ctx, "disconnect failed", slog.String("connection_id", ev.RequestContext.ConnectionID), slog.Any("error", err))
			return status(http.StatusInternalServerError), nil
		}
		return status(http.StatusOK), nil
	}
}

// RouterHandler returns the $default handler. Every reply goes through the
// router's Sender (@connections), so the handler always answers 200 with
// an empty body: a non-2xx answer would make API Gateway send the client
// its own generic error on top of ours.
func RouterHandler(r *streamer.Router, opts ...Option) WebSocketHandler {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		ctx = withCorrelation(ctx, ev)
		defer cfg.flush(ctx)
		msg, err := Message(ev)
		if err != nil {
			// Let the router refuse it like any unreadable message, so the
			// client gets the usual INVALID_MESSAGE error.
			cfg.log.WarnContext(ctx, "undecodable message body", slog.Any("error", err))
			msg = streamer.Message{ConnectionID: ev.RequestContext.ConnectionID, GatewayRequestID: ev.RequestContext.RequestID,
				DomainName: ev.RequestContext.DomainName, Stage: ev.RequestContext.Stage}
		}
		if err := r.HandleMessage(ctx, msg); err != nil {
			cfg.log.WarnContext(ctx, "reply not delivered", slog.String("connection_id", msg.ConnectionID), slog.Any("error", err))
		}
		return status(http.StatusOK), nil
	}
}
