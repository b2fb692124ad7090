package streamer

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
)

// Sender delivers one message to one connection through API Gateway's
// @connections API. *connection.Manager satisfies it; the message is
// marshalled to JSON by the Sender.
type Sender interface {
	Send(ctx context.Context, connectionID string, message any) error
}

// EndpointSender is a Sender that can also post to a connection through a
// given management endpoint, without reading the connection's record.
// *connection.Manager satisfies it. The router replies through it when the
// message names its endpoint, so replies reach the client even when the
// store has lost the connection's record.
type EndpointSender interface {
	Sender
	SendTo(ctx context.Context, endpoint, connectionID string, message any) error
}

// Router answers the messages of API Gateway's $default route. Sync
// actions run at once and their response goes back through the Sender;
// async actions are queued in the RequestStore, acknowledged, and run by a
// [Processor]: one in the same process, through the [Queue] both share
// (WithQueue), or one the store's stream or a sweep hands them to. Register actions before serving; a Router is safe for
// concurrent use.
type Router struct {
	requests store.RequestStore
	sender   Sender
	conns    store.ConnectionStore
	log      *slog.Logger
	now      func() time.Time

	replyEndpoint func(Message) string
	idKey         []byte // keys request ids (see requestIDFor)
	failures      *sendFailures
	syncTimeout   time.Duration
	maxMessage    int
	requestTTL    time.Duration
	cacheTTL      time.Duration
	cacheSize     int
	identities    *identityCache
	limits        *connectionLimits // nil: no per-connection rate limit
	channels      ChannelService    // nil: channel messages refused

	actions *Actions
	queue   *Queue // nil: stored requests reach a Processor another way
}

// action is one registered action: exactly one of sync and async is set.
// checker, for typed async handlers, refuses a bad payload before queueing;
// a sync handler decodes its payload itself, at once.
type action struct {
	name    string
	sync    Handler
	async   AsyncHandler
	checker payloadChecker
	perms   []string
	timeout time.Duration
}

// NewRouter returns a Router that queues async requests in requests and
// sends every reply through sender.
// Both are required; nil panics, as a programming error.
func NewRouter(requests store.RequestStore, sender Sender, opts ...Option) *Router {
	if requests == nil || sender == nil {
		panic("streamer: NewRouter needs a request store and a sender")
	}
	r := &Router{
		requests:      requests,
		sender:        sender,
		log:           slog.New(slog.DiscardHandler),
		now:           time.Now,
		replyEndpoint: defaultReplyEndpoint,
		syncTimeout:   DefaultSyncTimeout,
		maxMessage:    protocol.DefaultMaxMessageBytes,
		requestTTL:    DefaultRequestTTL,
		cacheTTL:      DefaultIdentityCacheTTL,
		cacheSize:     DefaultIdentityCacheSize,
		actions:       NewActions(),
	}
	for _, opt := range opts {
		if opt != nil {
			opt(r)
		}
	}
	if r.idKey == nil {
		r.idKey = make([]byte, 32)
		_, _ = crand.Read(r.idKey) // crypto/rand.Read never fails (Go ≥ 1.24)
	}
	r.identities = newIdentityCache(r.cacheTTL, r.cacheSize)
	r.failures = newSendFailures(r.log, r.now)
	return r
}

// Handle registers a sync action on the router's Actions (see
// [Actions.Handle]).
func (r *Router) Handle(name string, h Handler, opts ...ActionOption) {
	r.actions.Handle(name, h, opts...)
}

// HandleFunc registers a sync action implemented by a function.
func (r *Router) HandleFunc(name string, fn func(ctx context.Context, req *Request) (any, error), opts ...ActionOption) {
	r.actions.HandleFunc(name, fn, opts...)
}

// HandleAsync registers an async action: the router acknowledges it and a
// Processor runs h.
func (r *Router) HandleAsync(name string, h AsyncHandler, opts ...ActionOption) {
	r.actions.HandleAsync(name, h, opts...)
}

// HandleAsyncFunc registers an async action implemented by a function.
func (r *Router) HandleAsyncFunc(name string, fn func(ctx context.Context, req *Request, p progress.Reporter) (any, error), opts ...ActionOption) {
	r.actions.HandleAsyncFunc(name, fn, opts...)
}

// Use appends middleware to the router's Actions (see [Actions.Use]).
func (r *Router) Use(mw ...Middleware) { r.actions.Use(mw...) }

// Actions returns the router's action registry, for the Processor that
// runs its async actions (NewProcessor).
func (r *Router) Actions() *Actions { return r.actions }

// HandleMessage validates one message, runs or queues it, and sends the
// reply through the Sender. Problems with the message are answered to the
// client (the connection stays open); the returned error only says that a
// reply could not be delivered, for the adapter to log.
func (r *Router) HandleMessage(ctx context.Context, msg Message) error {
	if msg.GatewayRequestID != "" && connection.CorrelationID(ctx) == "" {
		ctx = connection.WithCorrelationID(ctx, msg.GatewayRequestID)
	}
	to := origin{connectionID: msg.ConnectionID, endpoint: r.replyEndpoint(msg)}
	log := r.log.With(slog.String("connection_id", msg.ConnectionID), slog.String("gateway_request_id", msg.GatewayRequestID), slog.String("correlation_id", connection.CorrelationID(ctx)))
	if r.limits != nil && !r.limits.allow(msg.ConnectionID, r.now()) {
		log.InfoContext(ctx, "rate limited")
		return r.reply(ctx, to, protocol.NewError(protocol.PeekID(msg.Body), protocol.CodeRateLimited, "too many messages, slow down"))
	}
	in, err := protocol.ParseInbound(msg.Body, r.maxMessage)
	if err != nil {
		var ve *protocol.ValidationError
		if !errors.As(err, &ve) {
			ve = &protocol.ValidationError{Code: protocol.CodeInvalidMessage, Reason: "message could not be read"}
		}
		log.DebugContext(ctx, "refused message", slog.String("code", string(ve.Code)), slog.String("reason", ve.Reason))
		return r.reply(ctx, to, protocol.NewError(ve.RequestID, ve.Code, ve.Reason))
	}
	if in.Type == protocol.TypePing {
		return r.reply(ctx, to, protocol.NewPong())
	}
	// Everything but ping acts for a user: identity first, so an
	// unauthenticated connection learns nothing, not even action names.
	if in.Type == protocol.TypeResume {
		return r.serveResume(ctx, log, to, in.RequestID)
	}
	replyID := in.ID
	if in.Type == protocol.TypeCancel {
		replyID = in.RequestID
	}
	id, err := r.identity(ctx, msg.ConnectionID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			log.InfoContext(ctx, "message on unknown connection")
			return r.reply(ctx, to, protocol.NewError(replyID, protocol.CodeUnauthorized, "connection is not authenticated"))
		}
		log.ErrorContext(ctx, "reading connection", slog.Any("error", err))
		return r.reply(ctx, to, protocol.NewError(replyID, protocol.CodeInternal, msgInternal))
	}
	log = log.With(slog.String("user_id", id.UserID))
	switch in.Type {
	case protocol.TypeCancel:
		return r.cancel(ctx, log, to, id, in.RequestID)
	case protocol.TypeSubscribe, protocol.TypeUnsubscribe, protocol.TypePublish, protocol.TypePresence:
		return r.serveChannel(ctx, log, to, id, in)
	}
	a, mw := r.actions.lookup(in.Action)
	if a == nil {
		return r.reply(ctx, to, protocol.NewError(in.ID, protocol.CodeUnknownAction, "unknown action "+truncate(in.Action, 64)))
	}
	for _, p := range a.perms {
		if !id.HasPermission(p) {
			log.InfoContext(ctx, "permission denied", slog.String("action", a.name), slog.String("permission", p))
			return r.reply(ctx, to, protocol.NewError(in.ID, protocol.CodeForbidden, "permission denied for action "+a.name))
		}
	}
	req := &Request{
		ID:           in.ID,
		Action:       a.name,
		Payload:      in.Payload,
		ConnectionID: msg.ConnectionID,
		Identity:     id,
		endpoint:     to.endpoint,
	}
	if a.async != nil {
		return r.enqueue(ctx, log, a, req)
	}
	return r.serveSync(ctx, log, a, mw, req)
}

// serveSync runs a sync handler under its timeout and replies. The handler
// runs on the caller's goroutine: it must honour ctx, and the reply is
// TIMEOUT if ctx expired before it returned an error.
func (r *Router) serveSync(ctx context.Context, log *slog.Logger, a *action, mw []Middleware, req *Request) error {
	timeout := r.syncTimeout
	if a.timeout > 0 {
		timeout = a.timeout
	}
	hctx, cancel := context.WithTimeout(ctx, timeout)
	res, err := invoke(hctx, chain(a.sync, mw), req)
	if err != nil && hctx.Err() != nil && ctx.Err() == nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
		// Whatever the handler made of it, the deadline is the cause.
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	cancel()
	if err != nil {
		return r.reply(ctx, req.origin(), r.failure(ctx, log, req, err))
	}
	data, err := json.Marshal(res)
	if err != nil {
		log.ErrorContext(ctx, "marshalling result", slog.String("action", req.Action), slog.Any("error", err))
		return r.reply(ctx, req.origin(), protocol.NewError(req.ID, protocol.CodeInternal, msgInternal))
	}
	return r.reply(ctx, req.origin(), protocol.NewResponse(req.ID, data))
}

// failure logs a handler error and returns the client's error message.
func (r *Router) failure(ctx context.Context, log *slog.Logger, req *Request, err error) protocol.Error {
	code, text := classify(err)
	level := slog.LevelInfo
	if code == protocol.CodeInternal {
		level = slog.LevelError
	}
	attrs := []slog.Attr{slog.String("action", req.Action), slog.String("code", string(code)), slog.Any("error", err)}
	var pe *panicError
	if errors.As(err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.stack)))
	}
	log.LogAttrs(ctx, level, "request failed", attrs...)
	id := req.ID
	if req.Async {
		id = req.RequestID
	}
	return protocol.NewError(id, code, text)
}

// origin is the connection a message came from and the management
// endpoint its event names. A reply goes there directly, so it never
// depends on the connection's record, which a store failure can take
// away.
type origin struct {
	connectionID string
	endpoint     string // "" when the event named none: the Sender finds it
}

// reply sends one message to the connection a message came from: through
// the message's own endpoint when the Sender can post to a given one (an
// EndpointSender), else through Send.
func (r *Router) reply(ctx context.Context, to origin, message any) error {
	var err error
	if es, ok := r.sender.(EndpointSender); ok && to.endpoint != "" {
		err = es.SendTo(ctx, to.endpoint, to.connectionID, message)
	} else {
		err = r.sender.Send(ctx, to.connectionID, message)
	}
	if err != nil {
		r.failures.report(ctx, err)
		return fmt.Errorf("streamer: replying to %s: %w", to.connectionID, err)
	}
	return nil
}

// chain wraps h in mw, the first middleware outermost.
func chain(h Handler, mw []Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// invoke runs a handler, turning a panic into an error so one bad request
// never takes the process down.
func invoke(ctx context.Context, h Handler, req *Request) (res any, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return h.ServeRequest(ctx, req)
}
