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

	"github.com/streamer-go/streamer/cmd/streamer/internal/demo"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/memory"
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
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGINT/SIGTERM waits for connections to close")
	fs.StringVar(&o.dynamoEndpoint, "dynamodb-endpoint", "", "keep connections in DynamoDB at this endpoint (e.g. http://127.0.0.1:4567 for dynalite) instead of memory; tables are created if missing")
	fs.StringVar(&o.tablePrefix, "table-prefix", dynamo.DefaultPrefix, "DynamoDB table name prefix, with --dynamodb-endpoint")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args, stderr); err != nil {
		return o, err
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
	return devRun(ctx, o, stdout, stderr)
}

// devRun serves until ctx ends (SIGINT/SIGTERM), then closes every socket
// with 1001, runs $disconnect for each and returns nil.
func devRun(ctx context.Context, o devOptions, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))

	// Listen first: the management endpoint, which the app's manager
	// needs, names the port, and --addr may ask for a free one.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	wsURL := "ws://" + ln.Addr().String() + "/" + o.stage
	endpoint := "http://" + ln.Addr().String() + "/" + o.stage

	var st store.ConnectionStore = memory.New()
	if o.dynamoEndpoint != "" {
		client, closeClient, err := dynamoClient(ctx, o.dynamoEndpoint, "", stderr)
		if err != nil {
			ln.Close()
			return err
		}
		defer closeClient()
		if _, err := dynamo.CreateTables(ctx, client, o.tablePrefix); err != nil {
			ln.Close()
			return fmt.Errorf("create tables at %s: %w", o.dynamoEndpoint, err)
		}
		st = dynamo.New(client, dynamo.WithPrefix(o.tablePrefix))
		logger.Info("streamer dev: connections in DynamoDB", "endpoint", o.dynamoEndpoint, "prefix", o.tablePrefix)
	}
	// The local gateway accepts any credentials; the SDK wants some.
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	mgr := connection.NewManager(st, connection.NewAPIGatewayClient(awsCfg, endpoint), endpoint, connection.WithLogger(logger))
	app := demo.New(st, mgr, logger)

	gw, err := local.New(local.Config{
		Stage:                    o.stage,
		RouteSelectionExpression: o.routeSelection,
		Routes:                   app.Routes(),
		IdleTimeout:              o.idleTimeout,
		MaxLifetime:              o.maxLifetime,
		OutboundQueue:            o.outboundQueue,
		AllowedOrigins:           o.allowedOrigins,
		Logger:                   logger,
	})
	if err != nil {
		ln.Close()
		return usageError{err}
	}
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()

	// Printed from the listener: Serve may not have run yet.
	fmt.Fprintf(stdout, "WebSocket URL:       %s\n", wsURL)
	fmt.Fprintf(stdout, "Management endpoint: %s\n", endpoint)
	fmt.Fprintf(stdout, "Try: {\"type\":\"request\",\"id\":\"1\",\"action\":\"whoami\"} (actions: echo, whoami, broadcast). Ctrl-C stops.\n")

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("streamer dev: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	gwErr := gw.Shutdown(sctx)
	mgrErr := mgr.Shutdown(sctx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if err := errors.Join(gwErr, mgrErr); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
