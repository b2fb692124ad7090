package demo

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

// The identity every connection gets while auth is off.
const (
	AnonymousUser = "anonymous"
	DefaultTenant = "default"
)

// The actions the demo answers.
const (
	ActionEcho      = "echo"
	ActionWhoami    = "whoami"
	ActionBroadcast = "broadcast"
)

// connectionTTL bounds a stored connection whose $disconnect never came:
// API Gateway's maximum connection lifetime plus a margin.
const connectionTTL = 2*time.Hour + 10*time.Minute

// Sender is what the demo needs of the ConnectionManager.
type Sender interface {
	Send(ctx context.Context, connectionID string, message any) error
	Broadcast(ctx context.Context, connectionIDs []string, message any) error
}

var _ Sender = (*connection.Manager)(nil)

// App is the demo application.
type App struct {
	store  store.ConnectionStore
	sender Sender
	log    *slog.Logger
	now    func() time.Time
}

// New returns the demo app over a connection store and a sender (the
// ConnectionManager). A nil logger discards logs.
func New(st store.ConnectionStore, sender Sender, logger *slog.Logger) *App {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &App{store: st, sender: sender, log: logger, now: time.Now}
}

// Routes maps the app's route keys to its handlers: $connect, $disconnect,
// one key per action (for the default selection expression
// $request.body.action) and $default for everything else.
func (a *App) Routes() map[string]local.Handler {
	return map[string]local.Handler{
		local.RouteConnect:    a.Connect,
		local.RouteDisconnect: a.Disconnect,
		local.RouteDefault:    a.Message,
		ActionEcho:            a.Message,
		ActionWhoami:          a.Message,
		ActionBroadcast:       a.Message,
	}
}

var ok = events.APIGatewayProxyResponse{StatusCode: 200}

// Connect stores the connection with the anonymous identity.
func (a *App) Connect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	now := a.now()
	c := &store.Connection{
		ConnectionID: req.RequestContext.ConnectionID,
		UserID:       AnonymousUser,
		TenantID:     DefaultTenant,
		ConnectedAt:  time.UnixMilli(req.RequestContext.ConnectedAt),
		LastPing:     now,
		TTL:          now.Add(connectionTTL).Unix(),
	}
	if err := a.store.Save(ctx, c); err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return ok, nil
}

// Disconnect removes the connection.
func (a *App) Disconnect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	if err := a.store.Delete(ctx, req.RequestContext.ConnectionID); err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return ok, nil
}

// Identity is whoami's data.
type Identity struct {
	ConnectionID string `json:"connectionId"`
	UserID       string `json:"userId"`
	TenantID     string `json:"tenantId"`
}

// Message answers one request envelope through the sender. Answers go out
// through @connections, so the handler's own response is empty, as for a
// one-way route.
func (a *App) Message(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := req.RequestContext.ConnectionID
	var in streamer.Inbound
	if req.IsBase64Encoded || json.Unmarshal([]byte(req.Body), &in) != nil {
		return a.reply(ctx, id, streamer.NewError("", streamer.CodeInvalidMessage, "messages are JSON request envelopes"))
	}
	switch in.Type {
	case streamer.TypePing:
		return a.reply(ctx, id, streamer.NewPong())
	case streamer.TypeRequest:
	default:
		return a.reply(ctx, id, streamer.NewError(in.ID, streamer.CodeInvalidMessage, "unsupported message type"))
	}
	if in.ID == "" {
		return a.reply(ctx, id, streamer.NewError("", streamer.CodeInvalidMessage, "a request needs an id"))
	}
	// The identity is the one $connect stored, never the message's.
	conn, err := a.store.Get(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return a.reply(ctx, id, streamer.NewError(in.ID, streamer.CodeUnauthorized, "unknown connection"))
		}
		a.log.ErrorContext(ctx, "demo: store", "connectionId", id, "err", err)
		return a.reply(ctx, id, streamer.NewError(in.ID, streamer.CodeInternal, "internal error"))
	}

	switch in.Action {
	case ActionEcho:
		data := in.Payload
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		return a.reply(ctx, id, streamer.NewResponse(in.ID, data))
	case ActionWhoami:
		data, _ := json.Marshal(Identity{ConnectionID: id, UserID: conn.UserID, TenantID: conn.TenantID})
		return a.reply(ctx, id, streamer.NewResponse(in.ID, data))
	case ActionBroadcast:
		return a.broadcast(ctx, conn, in)
	default:
		return a.reply(ctx, id, streamer.NewError(in.ID, streamer.CodeUnknownAction, "unknown action"))
	}
}

// broadcast sends the payload, as a response to the caller's request, to
// every connection of the caller's tenant; the caller's own copy is its
// answer.
func (a *App) broadcast(ctx context.Context, from *store.Connection, in streamer.Inbound) (events.APIGatewayProxyResponse, error) {
	conns, err := a.store.ListByTenant(ctx, from.TenantID)
	if err != nil {
		a.log.ErrorContext(ctx, "demo: list tenant", "tenantId", from.TenantID, "err", err)
		return a.reply(ctx, from.ConnectionID, streamer.NewError(in.ID, streamer.CodeInternal, "internal error"))
	}
	ids := make([]string, 0, len(conns))
	for _, c := range conns {
		ids = append(ids, c.ConnectionID)
	}
	data := in.Payload
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	if err := a.sender.Broadcast(ctx, ids, streamer.NewResponse(in.ID, data)); err != nil {
		// Gone connections are normal here; the manager removed them.
		a.log.InfoContext(ctx, "demo: broadcast incomplete", "tenantId", from.TenantID, "err", err)
	}
	return ok, nil
}

func (a *App) reply(ctx context.Context, connectionID string, msg any) (events.APIGatewayProxyResponse, error) {
	if err := a.sender.Send(ctx, connectionID, msg); err != nil {
		a.log.InfoContext(ctx, "demo: reply not delivered", "connectionId", connectionID, "err", err)
	}
	return ok, nil
}
