package streamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/streamer-go/streamer/pkg/auth"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
)

// DefaultConnectionTTL is how long a connection record lives: API Gateway's
// 2-hour connection limit plus a margin, because $disconnect is best effort
// and may never arrive.
const DefaultConnectionTTL = 2*time.Hour + 10*time.Minute

// TokenVerifier checks the token of a $connect request. *auth.Verifier
// satisfies it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*auth.Identity, error)
}

// ConnectRequest is a $connect event as the connect handler sees it.
type ConnectRequest struct {
	ConnectionID string
	// Headers and Query are the upgrade request's headers and query
	// parameters; the token is read from them.
	Headers map[string]string
	Query   map[string]string
	// DomainName and Stage locate the management API endpoint
	// (https://{DomainName}/{Stage}).
	DomainName string
	Stage      string
	// ConnectedAt is API Gateway's connection time (zero: now).
	ConnectedAt      time.Time
	SourceIP         string
	UserAgent        string
	GatewayRequestID string
}

// DisconnectRequest is a $disconnect event.
type DisconnectRequest struct {
	ConnectionID     string
	StatusCode       int
	Reason           string
	GatewayRequestID string
}

// ConnectHandler handles $connect and $disconnect: it verifies the token
// and stores the connection with the identity the router will trust, and
// removes it again. Async requests of a disconnected user keep running;
// their results follow the user.
type ConnectHandler struct {
	conns     store.ConnectionStore
	verifier  TokenVerifier
	anonymous func(ConnectRequest) Identity
	endpoint  func(ConnectRequest) string
	ttl       time.Duration
	log       *slog.Logger
	now       func() time.Time
	cleanups  []ConnectionCleaner
}

// ConnectOption configures a ConnectHandler.
type ConnectOption func(*ConnectHandler)

// WithVerifier makes $connect require a valid token. Without a verifier
// every connection is accepted with the anonymous identity.
func WithVerifier(v TokenVerifier) ConnectOption {
	return func(h *ConnectHandler) { h.verifier = v }
}

// WithAnonymousIdentity sets the identity of connections when no verifier
// is configured. The default makes each connection its own user
// ("anonymous:" + connection id), so anonymous clients never see each
// other's requests (and cannot resume across reconnects).
func WithAnonymousIdentity(fn func(ConnectRequest) Identity) ConnectOption {
	return func(h *ConnectHandler) {
		if fn != nil {
			h.anonymous = fn
		}
	}
}

// WithEndpointFunc sets how the stored management endpoint is derived from
// the request (default {scheme}://{DomainName}/{Stage}, the scheme from
// X-Forwarded-Proto or https; empty when DomainName is).
func WithEndpointFunc(fn func(ConnectRequest) string) ConnectOption {
	return func(h *ConnectHandler) {
		if fn != nil {
			h.endpoint = fn
		}
	}
}

// WithConnectionTTL sets the record's lifetime (default
// [DefaultConnectionTTL]).
func WithConnectionTTL(d time.Duration) ConnectOption {
	return func(h *ConnectHandler) {
		if d > 0 {
			h.ttl = d
		}
	}
}

// WithConnectLogger sets the logger (default: discard). Tokens are never
// logged.
func WithConnectLogger(l *slog.Logger) ConnectOption {
	return func(h *ConnectHandler) {
		if l != nil {
			h.log = l
		}
	}
}

// WithConnectClock replaces time.Now, for tests.
func WithConnectClock(now func() time.Time) ConnectOption {
	return func(h *ConnectHandler) {
		if now != nil {
			h.now = now
		}
	}
}

// NewConnectHandler returns a ConnectHandler storing connections in conns.
// A nil store panics, as a programming error.
func NewConnectHandler(conns store.ConnectionStore, opts ...ConnectOption) *ConnectHandler {
	if conns == nil {
		panic("streamer: NewConnectHandler needs a connection store")
	}
	h := &ConnectHandler{
		conns: conns,
		anonymous: func(r ConnectRequest) Identity {
			return Identity{UserID: anonymousPrefix + r.ConnectionID}
		},
		endpoint: defaultEndpoint,
		ttl:      DefaultConnectionTTL,
		log:      slog.New(slog.DiscardHandler),
		now:      time.Now,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(h)
		}
	}
	return h
}

// defaultEndpoint is https://{DomainName}/{Stage}, with the scheme taken
// from X-Forwarded-Proto when present (the local runtime serves plain
// http on loopback and says so there, as API Gateway says https).
func defaultEndpoint(r ConnectRequest) string {
	if r.DomainName == "" {
		return ""
	}
	scheme := "https"
	for k, v := range r.Headers {
		if strings.EqualFold(k, "X-Forwarded-Proto") && (v == "http" || v == "https") {
			scheme = v
		}
	}
	if r.Stage == "" {
		return scheme + "://" + r.DomainName
	}
	return scheme + "://" + r.DomainName + "/" + r.Stage
}

// Connect verifies the request's token and stores the connection. An
// error wrapping ErrUnauthorized means the token was missing or invalid
// (answer 401; nothing was stored); any other error is internal (answer
// 500). Neither carries detail meant for the client.
func (h *ConnectHandler) Connect(ctx context.Context, req ConnectRequest) error {
	log := h.log.With(slog.String("connection_id", req.ConnectionID), slog.String("gateway_request_id", req.GatewayRequestID), slog.String("correlation_id", connection.CorrelationID(ctx)))
	if req.ConnectionID == "" {
		return fmt.Errorf("streamer: connect without a connection id: %w", store.ErrInvalidInput)
	}
	var id Identity
	if h.verifier == nil {
		id = h.anonymous(req)
	} else {
		token, err := auth.TokenFromRequest(req.Headers, req.Query)
		if err != nil {
			log.InfoContext(ctx, "connection refused", slog.String("reason", reason(err)))
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		ai, err := h.verifier.Verify(ctx, token)
		if err != nil {
			// The reason is logged; the token never is.
			log.InfoContext(ctx, "connection refused", slog.String("reason", reason(err)))
			return fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		id = Identity{UserID: ai.UserID, TenantID: ai.TenantID, Permissions: slices.Clone(ai.Permissions)}
	}
	if id.UserID == "" {
		log.InfoContext(ctx, "connection refused", slog.String("reason", "empty user id"))
		return fmt.Errorf("%w: empty user id", ErrUnauthorized)
	}
	now := h.now()
	connectedAt := req.ConnectedAt
	if connectedAt.IsZero() {
		connectedAt = now
	}
	meta := map[string]string{}
	if req.SourceIP != "" {
		meta["source_ip"] = req.SourceIP
	}
	if req.UserAgent != "" {
		meta["user_agent"] = req.UserAgent
	}
	c := &store.Connection{
		ConnectionID: req.ConnectionID,
		UserID:       id.UserID,
		TenantID:     id.TenantID,
		Endpoint:     h.endpoint(req),
		ConnectedAt:  connectedAt,
		LastPing:     connectedAt,
		Permissions:  id.Permissions,
		Metadata:     meta,
		TTL:          connectedAt.Add(h.ttl).Unix(),
	}
	if err := h.conns.Save(ctx, c); err != nil {
		log.ErrorContext(ctx, "saving connection", slog.Any("error", err))
		return fmt.Errorf("streamer: saving connection: %w", err)
	}
	log.InfoContext(ctx, "connected", slog.String("user_id", id.UserID), slog.String("tenant_id", id.TenantID))
	return nil
}

// reason is the loggable text of an auth failure. auth's errors never
// contain the token.
func reason(err error) string {
	if errors.Is(err, auth.ErrNoToken) {
		return "no token"
	}
	return err.Error()
}

// Disconnect removes the connection record and runs the cleanups of
// WithConnectionCleanup (channel subscriptions). The user's async requests
// keep running.
func (h *ConnectHandler) Disconnect(ctx context.Context, req DisconnectRequest) error {
	if err := h.cleanupConnection(ctx, req.ConnectionID); err != nil {
		// The record goes anyway: subscriptions left behind expire by
		// their TTL, and a 410 on the next publication removes them.
		h.log.ErrorContext(ctx, "cleaning up connection", slog.String("connection_id", req.ConnectionID), slog.Any("error", err))
	}
	if err := h.conns.Delete(ctx, req.ConnectionID); err != nil {
		h.log.ErrorContext(ctx, "deleting connection", slog.String("connection_id", req.ConnectionID), slog.Any("error", err))
		return fmt.Errorf("streamer: deleting connection: %w", err)
	}
	h.log.InfoContext(ctx, "disconnected", slog.String("connection_id", req.ConnectionID), slog.Int("status", req.StatusCode))
	return nil
}
