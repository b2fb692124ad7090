package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
	"github.com/streamer-go/streamer/runtime/local"
)

func init() {
	register(command{name: "dev", summary: "run the local API Gateway WebSocket runtime with the demo app", run: runDev})
}

// devOptions is `streamer dev`'s command line.
type devOptions struct {
	addr            string
	stage           string
	routeSelection  string
	idleTimeout     time.Duration
	maxLifetime     time.Duration
	allowedOrigins  []string
	outboundQueue   int
	shutdownTimeout time.Duration
	logLevel        slog.Level
	// dynamoEndpoint, when set, keeps connections in DynamoDB (any
	// DynamoDB-API server, such as dynalite) instead of memory.
	dynamoEndpoint string
	tablePrefix    string
	// jwt turns auth on $connect on when its algorithms are set.
	jwt jwtOptions
	// metricsAddr is where /metrics listens; empty shares --addr.
	metricsAddr string
	// recovery is the lease and sweep of async requests.
	recovery recoveryOptions
	// pacing is the @connections budget (dev_pacing.go).
	pacing pacingOptions
	// replies keys async request ids (dev_replies.go).
	replies replyOptions
	// tpl runs a SAM/CloudFormation template's functions (dev_template.go).
	tpl templateOptions
	// sec is who may use the server (dev_security.go).
	sec securityOptions
}

func parseDevFlags(args []string, stderr io.Writer) (devOptions, error) {
	var o devOptions
	fs := flag.NewFlagSet("streamer dev", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (host:port; port 0 picks a free one)")
	fs.StringVar(&o.stage, "stage", local.DefaultStage, "stage: the first path segment of the WebSocket URL and the management endpoint")
	fs.StringVar(&o.routeSelection, "route-selection", local.DefaultRouteSelection, "route selection expression, $request.body.<path>")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", local.DefaultIdleTimeout, "close connections that send nothing for this long (API Gateway: 10m)")
	fs.DurationVar(&o.maxLifetime, "max-lifetime", local.DefaultMaxLifetime, "close connections this long after they open (API Gateway: 2h)")
	origins := fs.String("allowed-origins", "", "comma-separated browser origins allowed to connect (host patterns like app.example.com or localhost:*; \"*\" for any); default any localhost origin")
	fs.IntVar(&o.outboundQueue, "outbound-queue", local.DefaultOutboundQueue, "messages queued per slow client before @connections answers 429")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGINT/SIGTERM waits for connections to close and running async requests to finish (then they are cancelled and stay queued)")
	fs.StringVar(&o.dynamoEndpoint, "dynamodb-endpoint", "", "keep connections, async requests and channels in DynamoDB at this endpoint (e.g. http://127.0.0.1:4567 for dynalite) instead of memory; tables are created if missing (with --template: the template's tables; without it, dynalite is started)")
	fs.StringVar(&o.tablePrefix, "table-prefix", dynamo.DefaultPrefix, "DynamoDB table name prefix, with --dynamodb-endpoint")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	finishJWT := jwtFlags(fs, &o.jwt)
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this address instead of --addr's")
	finishRecovery := recoveryFlags(fs, &o.recovery)
	finishPacing := pacingFlags(fs, &o.pacing)
	replyFlags(fs, &o.replies)
	templateFlags(fs, &o.tpl)
	finishSecurity := securityFlags(fs, &o.sec)
	if err := parseFlags(fs, args, stderr); err != nil {
		return o, err
	}
	if err := finishSecurity(); err != nil {
		return o, usageError{err}
	}
	if err := finishPacing(); err != nil {
		return o, usageError{err}
	}
	if err := finishRecovery(); err != nil {
		return o, usageError{err}
	}
	if err := o.replies.load(); err != nil {
		return o, usageError{err}
	}
	if err := finishJWT(); err != nil {
		return o, usageError{err}
	}
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return o, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)}
	}
	for _, p := range strings.Split(*origins, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.allowedOrigins = append(o.allowedOrigins, p)
		}
	}
	if o.tablePrefix == "" {
		return o, usageError{errors.New("--table-prefix must not be empty")}
	}
	if o.idleTimeout <= 0 || o.maxLifetime <= 0 || o.shutdownTimeout <= 0 || o.outboundQueue <= 0 {
		return o, usageError{errors.New("durations and --outbound-queue must be positive")}
	}
	return o, nil
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseDevFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.tpl.path != "" {
		return devTemplateRun(ctx, o, stdout, stderr)
	}
	return devRun(ctx, o, stdout, stderr)
}

// devStack is the running demo app: the local gateway in front of the
// awslambda handlers, the router, its in-process processor pool, and the
// connection manager they all reply through.
type devStack struct {
	wsURL, endpoint string
	addr            string
	ui              *devUI

	gw          *local.Gateway
	proc        *streamer.Processor
	mgr         *connection.Manager
	channels    *devChannels
	served      chan error
	closeClient func()
	log         *slog.Logger
	stopJWKS    func()
	metrics     *devMetrics
	sec         securityOptions // resolved for the bound address
}

// startDev listens and serves the demo app. On error nothing is left
// running.
func startDev(ctx context.Context, o devOptions, logger *slog.Logger, stderr io.Writer) (_ *devStack, err error) {
	verifier, jwks, err := o.jwt.verifier(ctx, logger)
	if err != nil {
		return nil, usageError{err}
	}
	defer func() {
		if err != nil {
			jwks.Close()
		}
	}()
	// Listen first: the management endpoint, which the app's manager
	// needs, names the port, and --addr may ask for a free one.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	s := &devStack{
		wsURL:       "ws://" + ln.Addr().String() + "/" + o.stage,
		endpoint:    "http://" + ln.Addr().String() + "/" + o.stage,
		addr:        ln.Addr().String(),
		closeClient: func() {},
		log:         logger,
		stopJWKS:    jwks.Close,
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	undo = append(undo, func() { ln.Close() })
	if err := o.sec.resolve(ln.Addr().String()); err != nil {
		return nil, err
	}
	s.sec = o.sec

	// One store holds both connections and async requests, as one
	// DynamoDB Store does for a deployment.
	var st interface {
		store.ConnectionStore
		store.RequestStore
	} = memory.New()
	var chanStore channel.Store = channel.NewMemoryStore()
	if o.dynamoEndpoint != "" {
		client, closeClient, err := dynamoClient(ctx, o.dynamoEndpoint, "", stderr)
		if err != nil {
			return nil, err
		}
		undo = append(undo, closeClient)
		if _, err := dynamo.CreateTables(ctx, client, o.tablePrefix); err != nil {
			return nil, fmt.Errorf("create tables at %s: %w", o.dynamoEndpoint, err)
		}
		st = dynamo.New(client, dynamo.WithPrefix(o.tablePrefix))
		chanStore = channel.NewDynamoStore(client, channel.WithDynamoPrefix(o.tablePrefix))
		s.closeClient = closeClient
		logger.Info("streamer dev: connections and requests in DynamoDB", "endpoint", o.dynamoEndpoint, "prefix", o.tablePrefix)
	}

	// The local gateway accepts any credentials; the SDK wants some.
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	s.mgr = connection.NewManager(st, connection.NewFastClient(awsCfg, s.endpoint), s.endpoint, connection.WithLogger(logger), o.pacing.managerOption())
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
		defer cancel()
		s.mgr.Shutdown(sctx)
	})

	s.channels = startChannels(ctx, chanStore, s.mgr, logger)
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
		defer cancel()
		s.channels.shutdown(sctx, logger)
	})
	queue := streamer.NewQueue(streamer.DefaultQueueSize) // the router hands the processor's pool what it stores
	router := streamer.NewRouter(st, s.mgr, streamer.WithConnectionStore(st), streamer.WithLogger(logger), streamer.WithChannels(s.channels.svc), streamer.WithReplyEndpoint(devReplyEndpoint), streamer.WithRequestIDKey(o.replies.key), streamer.WithQueue(queue))
	demo.Register(router, st, s.mgr)
	s.proc = streamer.NewProcessor(st, s.mgr, router.Actions(), append(o.recovery.processorOptions(),
		streamer.WithProcessorConnections(st), streamer.WithProcessorQueue(queue), streamer.WithProcessorLogger(logger))...)
	if err := s.proc.Start(ctx); err != nil {
		return nil, fmt.Errorf("start processor: %w", err)
	}
	undo = append(undo, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
		defer cancel()
		s.proc.Shutdown(sctx)
	})

	if s.metrics, err = newDevMetrics(o.metricsAddr, ln, s.mgr, s.proc, jwks); err != nil {
		return nil, err
	}
	undo = append(undo, s.metrics.close)
	connectOpts := []streamer.ConnectOption{streamer.WithConnectLogger(logger), streamer.WithConnectionCleanup(s.channels.svc)}
	if verifier != nil {
		connectOpts = append(connectOpts, streamer.WithVerifier(verifier))
		logger.Info("streamer dev: auth on: $connect needs a JWT (Authorization: Bearer, or the token query parameter)",
			"algorithms", strings.Join(o.jwt.algorithms, ","), "issuer", o.jwt.issuer, "audience", o.jwt.audience)
	} else {
		connectOpts = append(connectOpts, streamer.WithAnonymousIdentity(demo.AnonymousIdentity))
		logger.Warn("streamer dev: AUTH IS OFF: every connection is accepted as user \"anonymous\" in tenant \"default\"; pass --jwt-algorithms and a key to require tokens")
	}
	conns := streamer.NewConnectHandler(st, connectOpts...)
	// No awslambda.WithFlusher here: Lambda freezes a process between
	// invocations, so there a handler waits for its background work
	// (LastPing writes) before it returns; this process is never frozen
	// and serves every connection, so a Flush would make each handler wait
	// for every connection's writes. s.mgr.Shutdown waits for them at exit.
	logOpt := awslambda.WithLogger(logger)

	if s.ui, err = newDevUI(o, s, st); err != nil {
		return nil, err
	}
	s.gw, err = local.New(o.sec.gatewayConfig(local.Config{
		Stage:                    o.stage,
		RouteSelectionExpression: o.routeSelection,
		Routes: map[string]local.Handler{
			local.RouteConnect:    awslambda.ConnectHandler(conns, logOpt),
			local.RouteDisconnect: awslambda.DisconnectHandler(conns, logOpt),
			local.RouteDefault:    awslambda.RouterHandler(router, logOpt),
		},
		IdleTimeout:    o.idleTimeout,
		MaxLifetime:    o.maxLifetime,
		OutboundQueue:  o.outboundQueue,
		AllowedOrigins: o.allowedOrigins,
		Logger:         logger,
		Observer:       local.JoinObservers(s.ui.ui, s.metrics.obs),
		DomainName:     ln.Addr().String(), // the UI's server serves ln, not the gateway
	}, false, local.DefaultRegion))
	if err != nil {
		return nil, usageError{err}
	}
	s.metrics.reg.MustRegister(limitsCollector{s.gw})
	s.served = make(chan error, 1)
	s.ui.srv.Handler = s.guard(s.metrics.wrap(s.ui.srv.Handler))
	s.metrics.start(logger, s.guard)
	go func() { s.served <- s.serveUI(ln) }()
	return s, nil
}

// shutdown stops the stack in the order that loses nothing: the processor
// first (it claims nothing new at once; running handlers finish while the
// listener and the gateway still carry their progress and results, through
// @connections, to the clients, or are cancelled at the deadline and their
// requests put back in the queue), then the listener with the page and
// console, then the gateway (no new messages; every socket closed with 1001
// and $disconnect run), then channels and the manager (pending sends done).
// Everything is bounded by ctx; the sockets close while the runs cut at
// the processor's deadline are put back (see stopProcessorThen).
func (s *devStack) shutdown(ctx context.Context) error {
	// The processor may use the budget up to a reserve that is left for
	// closing the sockets and the manager's own background work (LastPing
	// writes, cleanups).
	pctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		reserve := min(time.Until(dl)/4, time.Second)
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
		defer cancel()
	}
	var metricsErr, uiErr, gwErr, serveErr error
	procErr := stopProcessorThen(pctx, s.proc, func() {
		metricsErr = s.shutdownMetrics(ctx)
		uiErr = s.shutdownUI(ctx)
		gwErr = s.gw.Shutdown(ctx)
		if serveErr = <-s.served; errors.Is(serveErr, http.ErrServerClosed) {
			serveErr = nil
		}
	})
	if procErr != nil && pctx.Err() != nil && ctx.Err() == nil {
		// Handlers still running at the deadline were cancelled and their
		// requests put back (one log line each); in a dev loop that is not
		// a failure.
		s.log.Warn("streamer dev: async handlers cancelled at the shutdown deadline; their requests stay queued", "err", procErr)
		procErr = nil
	}
	chErr := s.channels.shutdown(ctx, s.log)
	mgrErr := s.mgr.Shutdown(ctx)
	s.closeClient()
	s.stopJWKS()
	return errors.Join(metricsErr, uiErr, gwErr, serveErr, procErr, chErr, mgrErr)
}

// stopProcessorThen shuts proc down under pctx, then runs closeSockets,
// and returns proc's error once both are done. closeSockets runs once the
// processor is done or, failing that, at pctx's deadline: the handlers cut
// there have nothing more for the clients, and the store writes that put
// their requests back (slow on a loaded machine) need no socket.
func stopProcessorThen(pctx context.Context, proc interface{ Shutdown(context.Context) error }, closeSockets func()) error {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = proc.Shutdown(pctx)
	}()
	select {
	case <-done:
	case <-pctx.Done():
	}
	closeSockets()
	<-done
	return err
}

// devRun serves until ctx ends (SIGINT/SIGTERM), then closes every socket
// with 1001, runs $disconnect for each and returns nil.
func devRun(ctx context.Context, o devOptions, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	s, err := startDev(ctx, o, logger, stderr)
	if err != nil {
		return err
	}

	// Printed from the listener: Serve may not have run yet.
	fmt.Fprintf(stdout, "WebSocket URL:       %s\n", s.wsURL)
	fmt.Fprintf(stdout, "Management endpoint: %s\n", s.endpoint)
	fmt.Fprintf(stdout, "Metrics:             %s\n", s.metrics.url)
	printDevUI(stdout, s)
	s.sec.printSecurity(stdout, "http://"+s.addr, false)
	if o.jwt.enabled() {
		fmt.Fprintf(stdout, "Auth:                JWT (%s); send the token as Authorization: Bearer or ?token=\n", strings.Join(o.jwt.algorithms, ", "))
	} else {
		fmt.Fprintf(stdout, "Auth:                OFF, every connection is user \"anonymous\" in tenant \"default\" (--jwt-algorithms turns it on)\n")
	}
	fmt.Fprintf(stdout, "Try: {\"type\":\"request\",\"id\":\"1\",\"action\":\"whoami\"} (actions: echo, whoami, broadcast, report {\"seconds\":n}). Ctrl-C stops.\n")
	fmt.Fprintln(stdout, channelsHint)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.served:
		// Serve ended on its own; shutdown must not wait for it again.
		s.served <- serveErr
		logger.Error("streamer dev: serve failed", "err", serveErr)
	}
	logger.Info("streamer dev: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	if err := s.shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if serveErr != nil {
		return fmt.Errorf("serve: %w", serveErr)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
