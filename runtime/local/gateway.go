package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// Handler handles the events of one route. It has the shape of an
// aws-lambda-go WebSocket handler, so the same function runs in Lambda and
// in the local gateway.
type Handler func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

// Route keys API Gateway reserves.
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// API Gateway's quotas, which the gateway enforces the same way.
const (
	// MaxMessageBytes is the largest message in either direction (128 KiB).
	MaxMessageBytes = 128 * 1024
	// MaxFrameBytes is the largest WebSocket frame the gateway sends (32 KiB).
	MaxFrameBytes = 32 * 1024
)

// Defaults of the Config fields.
const (
	DefaultStage               = "dev"
	DefaultRouteSelection      = "$request.body.action"
	DefaultIdleTimeout         = 10 * time.Minute
	DefaultMaxLifetime         = 2 * time.Hour
	DefaultIntegrationTimeout  = 29 * time.Second
	DefaultOutboundQueue       = 256
	DefaultCloseTimeout        = time.Second
	DefaultMaxMessagesInFlight = 32
)

// ErrInvalidConfig is returned by New for a Config it cannot run.
var ErrInvalidConfig = errors.New("local: invalid config")

// Config configures a Gateway. The zero value is a gateway on a random
// loopback port, stage "dev", with no routes.
type Config struct {
	// Addr is the address Start listens on. Empty means "127.0.0.1:0", a
	// random free port.
	Addr string
	// Stage is the first path segment of every URL. Empty means "dev".
	Stage string
	// RouteSelectionExpression picks a message's route key from its JSON
	// body: $request.body.<path>, for instance $request.body.action or
	// $request.body.meta.kind. Empty means "$request.body.action".
	RouteSelectionExpression string
	// Routes maps route keys ($connect, $disconnect, $default, custom keys)
	// to handlers. A missing $connect accepts every connection; a missing
	// $disconnect is not called.
	Routes map[string]Handler
	// TwoWayRoutes lists the route keys that have a route response: their
	// handler's non-empty response body is sent back to the client. Other
	// routes are one-way, API Gateway's default.
	TwoWayRoutes []string
	// IdleTimeout closes a connection that received nothing (no message,
	// no ping) for this long, with 1001. Zero means 10 minutes.
	IdleTimeout time.Duration
	// MaxLifetime closes a connection this long after it opened, with 1001.
	// Zero means 2 hours.
	MaxLifetime time.Duration
	// IntegrationTimeout is how long the gateway waits for a handler's
	// answer, API Gateway's integration timeout; the handler's context
	// ends then too. Past it a message's client gets API Gateway's
	// {"message": "Endpoint request timed out", ...} frame and keeps its
	// socket, a $connect's upgrade is answered 504, and the handler's late
	// answer is dropped. Zero means 29 seconds.
	IntegrationTimeout time.Duration
	// RouteTimeouts sets the integration timeout of single routes, by
	// route key (an integration's TimeoutInMillis); a route not listed, or
	// listed with zero, has IntegrationTimeout.
	RouteTimeouts map[string]time.Duration
	// OutboundQueue is how many messages may wait for one slow client; once
	// full, POST @connections answers 429 LimitExceededException. Zero means
	// 256.
	OutboundQueue int
	// MaxMessagesInFlight bounds how many of one connection's messages are
	// handled at once. Each message is its own invocation, run
	// concurrently with the connection's others as API Gateway runs them,
	// so responses may come back in any order; at the bound the gateway
	// stops reading the connection until one finishes (the client is
	// slowed, nothing is dropped). 1 handles a connection's messages one
	// at a time, in order, which API Gateway does not promise. Zero means
	// DefaultMaxMessagesInFlight (32).
	MaxMessagesInFlight int
	// AllowedOrigins lists the browser origins allowed to connect, as host
	// patterns matched with path.Match ("app.example.com", "localhost:*"),
	// or "scheme://host" patterns. "*" allows any origin. Empty means any
	// localhost origin. Requests without an Origin header (non-browser
	// clients) are always allowed.
	AllowedOrigins []string
	// AllowedHosts lists the names, besides the bound address, localhost,
	// 127.0.0.1, [::1] and DomainName, that requests may carry in Host
	// ("dev.example.test", "*.example.test" for its subdomains, "*" for
	// any). A request for another name is refused with 403: it is how a
	// web page reaches a loopback server through DNS rebinding. Any port
	// is accepted with an allowed name.
	AllowedHosts []string
	// AccessToken, when set, must come with every management API request
	// ("Authorization: Bearer TOKEN", "X-Streamer-Token", the
	// AccessTokenCookie cookie or ?token=), unless the request is signed
	// with the SigningSecret (see VerifySignatures), and with the private
	// paths of handlers wrapped in Guard. Set it when the gateway listens
	// on an address other machines reach. Empty requires nothing.
	AccessToken string
	// DomainName is the requestContext.domainName of events. Empty means
	// the listener's host:port.
	DomainName string
	// APIID is the requestContext.apiId of events. Empty means "local".
	APIID string
	// VerifySignatures makes the management API check SigV4 signatures
	// (in the Authorization header or presigned in the query string) and
	// refuse, with 403 and API Gateway's error type, what API Gateway
	// refuses: an unsigned request (MissingAuthenticationTokenException),
	// a malformed signature (IncompleteSignatureException), a signature
	// scoped to another service or region, one more than 5 minutes from
	// now (a presigned one: past its X-Amz-Expires), or one that does not
	// match the request and its body (InvalidSignatureException).
	// Any access key ID is accepted; the signature must be made with
	// SigningSecret. False accepts any request, signed or not.
	VerifySignatures bool
	// SigningSecret is the secret access key signatures are checked
	// against, whatever the access key ID. Empty means
	// LocalSecretAccessKey ("local").
	SigningSecret string
	// Region is the region a signature's credential scope must name. Empty
	// means DefaultRegion (us-east-1) with VerifySignatures, and any
	// region with VerifyCredentials.
	Region string
	// VerifyCredentials, when set, makes the management API check each
	// request's SigV4 signature against exactly these credentials (the
	// access key too) and refuse unsigned or badly signed requests with
	// 403 ForbiddenException. It takes precedence over VerifySignatures.
	// Nil accepts any request, signed or not.
	VerifyCredentials aws.CredentialsProvider
	// ConnectIAM makes $connect require what API Gateway requires of a
	// route with AuthorizationType AWS_IAM: an upgrade request signed with
	// SigV4 for execute-api, in its Authorization header or as a
	// presigned URL (X-Amz-Signature and the other X-Amz-* query
	// parameters, what browsers send). The signature is checked as the
	// management API checks it, whether or not VerifySignatures is on:
	// against VerifyCredentials when set, else any access key ID with
	// SigningSecret, in Region. A missing or bad signature is refused with
	// 403 and API Gateway's error type before $connect runs; a good one
	// fills the $connect event's requestContext.identity (accessKey,
	// accountId, caller, user, userArn). IAM policies are not evaluated.
	ConnectIAM bool
	// AccountID is the account identity.accountId and identity.userArn
	// name for ConnectIAM. Empty means "123456789012".
	AccountID string
	// Quotas, when set, enforces API Gateway's account-level rates: new
	// connections a second and @connections calls a second (see Quotas).
	// Nil enforces none.
	Quotas *Quotas
	// Faults, when set, injects API Gateway's failures at the rates it
	// gives (see Faults). Nil injects none.
	Faults *Faults
	// MessageLimit is the largest message in either direction: a larger
	// inbound message closes the socket with 1009, a larger POST is
	// answered 413. Zero means MaxMessageBytes (128 KiB).
	MessageLimit int
	// FrameLimit is the largest frame the gateway sends; longer messages
	// are split. Zero means MaxFrameBytes (32 KiB).
	FrameLimit int
	// BodyTimeout bounds the reading of a management call's body (and of
	// any request body Guard sees), from the end of its headers: a client
	// that announces a body and sends it slowly is answered 408 and
	// disconnected. Zero means DefaultBodyTimeout (10 s).
	BodyTimeout time.Duration
	// CloseTimeout bounds how long the gateway waits for a client to
	// answer its close frame (idle timeout, lifetime, DELETE, Shutdown)
	// before it drops the socket. API Gateway does not wait on a silent
	// client either, and without a bound one client that never reads would
	// hold Shutdown for coder/websocket's fixed 5 s. Zero means
	// DefaultCloseTimeout (1 s).
	CloseTimeout time.Duration
	// Observer, when set, is told of every connection, route invocation
	// and @connections call (see Observer). Nil observes nothing.
	Observer Observer
	// Logger receives the gateway's logs. Nil discards them.
	Logger *slog.Logger
}

// Gateway is a local API Gateway WebSocket API. Create it with New; it is
// safe for concurrent use.
type Gateway struct {
	cfg      Config
	routes   map[string]Handler
	twoWay   map[string]bool
	selector routeSelector
	origins  []string
	log      *slog.Logger
	obs      Observer // nil when Config.Observer is unset
	// sig checks every management request's signature; nil when
	// signatures are not checked. tokenSig checks a signature that stands
	// in for the AccessToken.
	sig, tokenSig *signatureCheck
	limits        *limiter  // nil without Config.Quotas
	faults        *injector // nil without Config.Faults
	srv           *http.Server
	// hostSet is the Host names the gateway answers to, set when it
	// listens (the bound address is part of it).
	hostSet atomic.Pointer[hostSet]

	mu           sync.Mutex
	conns        map[string]*conn // open connections, addressable by the API
	live         map[string]*conn // every connection from $connect to $disconnect
	addr         string
	shuttingDown bool
	closed       bool
	// wg counts connection goroutines (each upgrade's ServeHTTP, closers
	// and writers) and the Start goroutine, which http.Server does not wait
	// for once a connection is hijacked.
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutDone chan struct{}

	// connectSig checks $connect's signature with ConnectIAM; nil without.
	connectSig *signatureCheck
}

// New checks cfg, fills in its defaults and returns a gateway that is not
// yet listening.
func New(cfg Config) (*Gateway, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Stage == "" {
		cfg.Stage = DefaultStage
	}
	if strings.ContainsAny(cfg.Stage, "/?#@ ") {
		return nil, fmt.Errorf("%w: stage %q must be one path segment", ErrInvalidConfig, cfg.Stage)
	}
	if cfg.RouteSelectionExpression == "" {
		cfg.RouteSelectionExpression = DefaultRouteSelection
	}
	sel, err := parseRouteSelection(cfg.RouteSelectionExpression)
	if err != nil {
		return nil, err
	}
	if cfg.IdleTimeout < 0 || cfg.MaxLifetime < 0 || cfg.IntegrationTimeout < 0 || cfg.OutboundQueue < 0 || cfg.CloseTimeout < 0 || cfg.MaxMessagesInFlight < 0 {
		return nil, fmt.Errorf("%w: negative timeout, queue size or MaxMessagesInFlight", ErrInvalidConfig)
	}
	for k, d := range cfg.RouteTimeouts {
		if d < 0 {
			return nil, fmt.Errorf("%w: negative integration timeout for route %q", ErrInvalidConfig, k)
		}
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.MessageLimit < 0 || cfg.FrameLimit < 0 {
		return nil, fmt.Errorf("%w: negative MessageLimit or FrameLimit", ErrInvalidConfig)
	}
	if cfg.MessageLimit == 0 {
		cfg.MessageLimit = MaxMessageBytes
	}
	if cfg.FrameLimit == 0 {
		cfg.FrameLimit = MaxFrameBytes
	}
	if cfg.BodyTimeout < 0 {
		return nil, fmt.Errorf("%w: negative BodyTimeout", ErrInvalidConfig)
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.IntegrationTimeout == 0 {
		cfg.IntegrationTimeout = DefaultIntegrationTimeout
	}
	if cfg.OutboundQueue == 0 {
		cfg.OutboundQueue = DefaultOutboundQueue
	}
	if cfg.MaxMessagesInFlight == 0 {
		cfg.MaxMessagesInFlight = DefaultMaxMessagesInFlight
	}
	if cfg.APIID == "" {
		cfg.APIID = "local"
	}
	origins, err := originPatterns(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		cfg:      cfg,
		routes:   make(map[string]Handler, len(cfg.Routes)),
		twoWay:   make(map[string]bool, len(cfg.TwoWayRoutes)),
		selector: sel,
		origins:  origins,
		log:      logger,
		obs:      cfg.Observer,
		sig:      signatureChecks(cfg),
		limits:   newLimiter(cfg.Quotas),
		faults:   newInjector(cfg.Faults),
		conns:    make(map[string]*conn),
		live:     make(map[string]*conn),
		shutDone: make(chan struct{}),
	}
	g.hostSet.Store(newHostSet("", cfg.DomainName, cfg.AllowedHosts))
	if cfg.AccessToken != "" {
		tc := cfg
		tc.VerifySignatures, tc.VerifyCredentials = true, nil
		g.tokenSig = signatureChecks(tc)
	}
	if cfg.ConnectIAM {
		cc := cfg
		cc.VerifySignatures = true
		g.connectSig = signatureChecks(cc)
	}
	for k, h := range cfg.Routes {
		if h == nil {
			return nil, fmt.Errorf("%w: route %q has a nil handler", ErrInvalidConfig, k)
		}
		g.routes[k] = h
	}
	for _, k := range cfg.TwoWayRoutes {
		g.twoWay[k] = true
	}
	g.srv = ServerTimeouts(&http.Server{
		Handler:     g,
		ConnContext: withSpellingConn,
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	})
	return g, nil
}

// Start listens on Config.Addr and serves in the background until Shutdown
// or Close. URL and ManagementEndpoint are valid once it returns.
func (g *Gateway) Start() error {
	ln, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("local: listen: %w", err)
	}
	if err := g.setListener(ln); err != nil {
		ln.Close()
		return err
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := g.srv.Serve(spellingListener{ln}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("local: serve", "err", err)
		}
	}()
	return nil
}

// Serve accepts connections on ln until Shutdown or Close, like
// http.Server.Serve, and then returns http.ErrServerClosed. URL and
// ManagementEndpoint name ln's address once Serve has started; a caller
// that runs Serve in a goroutine and prints the URLs at once should build
// them from ln.Addr().
func (g *Gateway) Serve(ln net.Listener) error {
	if err := g.setListener(ln); err != nil {
		return err
	}
	return g.srv.Serve(spellingListener{ln})
}

func (g *Gateway) setListener(ln net.Listener) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shuttingDown {
		return http.ErrServerClosed
	}
	if g.addr == "" {
		g.addr = ln.Addr().String()
		g.hostSet.Store(newHostSet(g.addr, g.cfg.DomainName, g.cfg.AllowedHosts))
	}
	return nil
}

// Addr is the address the gateway listens on ("127.0.0.1:54321"), or "" before
// Start or Serve.
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.addr
}

// URL is the WebSocket URL clients connect to: ws://ADDR/{stage}.
func (g *Gateway) URL() string {
	return "ws://" + g.Addr() + "/" + g.cfg.Stage
}

// ManagementEndpoint is the base endpoint of the @connections API,
// http://ADDR/{stage}, to give to apigatewaymanagementapi.Options.BaseEndpoint.
func (g *Gateway) ManagementEndpoint() string {
	return "http://" + g.Addr() + "/" + g.cfg.Stage
}

// ActiveConnections reports how many WebSocket connections are open.
func (g *Gateway) ActiveConnections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

func (g *Gateway) domainName() string {
	if g.cfg.DomainName != "" {
		return g.cfg.DomainName
	}
	return g.Addr()
}

// ServeHTTP routes the gateway's single port: the WebSocket upgrade at
// /{stage} and the management API at /{stage}/@connections/{id}. A Host
// that does not name the gateway is refused first (see AllowedHosts), and
// a management request from a browser origin that is not allowed.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.checkHost(w, r) {
		return
	}
	path := r.URL.EscapedPath()
	stagePath := "/" + g.cfg.Stage
	switch {
	case path == stagePath || path == stagePath+"/":
		if isWebSocketUpgrade(r) && !g.admitUpgrade(w) {
			return
		}
		g.serveUpgrade(w, r)
	case strings.HasPrefix(path, stagePath+"/@connections/"):
		if !g.checkRequestOrigin(w, r) {
			return
		}
		g.bodyDeadline(w, r)
		g.serveManagement(w, r, strings.TrimPrefix(path, stagePath+"/@connections/"))
	default:
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	}
}

// Shutdown stops the gateway gracefully: it stops accepting connections,
// lets in-flight management calls finish, closes every WebSocket with 1001
// ("Going away"), runs $disconnect for each and waits for all of it. When
// ctx ends first, it closes what is left at once (see Close) and returns
// ctx.Err(). Calling it again waits for the first call to finish.
func (g *Gateway) Shutdown(ctx context.Context) error {
	first := false
	g.shutOnce.Do(func() { first = true })
	if !first {
		select {
		case <-g.shutDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer close(g.shutDone)

	g.mu.Lock()
	g.shuttingDown = true
	g.mu.Unlock()

	// http.Server.Shutdown closes the listeners and waits for requests that
	// are not hijacked, including upgrades still running $connect; those see
	// shuttingDown once upgraded and close themselves.
	if err := g.srv.Shutdown(ctx); err != nil {
		g.Close()
		return err
	}
	for _, c := range g.snapshot() {
		c.closeWith(closeGoingAway, reasonGoingAway)
	}
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		g.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops the gateway now: it closes the listeners and every socket
// without a close handshake, cancels the contexts of running handlers (the
// $disconnect handlers of the closed connections still run, with a
// cancelled context), and waits for the gateway's goroutines to exit.
// Calling it again is a no-op.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.shuttingDown = true
	already := g.closed
	g.closed = true
	g.mu.Unlock()
	if already {
		g.wg.Wait()
		return nil
	}
	err := g.srv.Close()
	for _, c := range g.snapshotLive() {
		c.abort()
	}
	g.wg.Wait()
	return err
}

func (g *Gateway) snapshot() []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		out = append(out, c)
	}
	return out
}

// drainBody reads what is left of a request body so the connection can be
// reused, bounded so a large body cannot hold the handler.
func drainBody(r io.Reader, limit int) {
	_, _ = io.CopyN(io.Discard, r, int64(limit)+1)
}
