// Command lambda is the one binary a Streamer deployment runs on AWS
// Lambda (deploy/template.json builds all five functions from it): the
// $connect, $disconnect and $default routes of the WebSocket API, the
// requests table's DynamoDB stream, and a scheduled sweep for requests no
// stream record will bring (a dispatch lost after its retries, a worker
// that died holding its lease). The template sets STREAMER_FUNCTION per
// function to pick the handler; every other setting comes from
// awslambda.ConfigFromEnv.
//
// The actions are examples/demoapp's (echo, whoami, broadcast, report),
// the same code `streamer dev` runs: replace the demoapp.Register call in
// build with your own actions; everything else is wiring.
//
// Build it for the provided.al2023 runtime on arm64:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -ldflags='-s -w' -o deploy/build/bootstrap ./examples/lambda
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/examples/demoapp"
	"github.com/streamer-go/streamer/pkg/channel"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// EnvFunction names the handler this process runs. It is this binary's
// choice, not awslambda's: the template sets it on each function.
const EnvFunction = "STREAMER_FUNCTION"

// The values of EnvFunction, one per function of the template.
const (
	FunctionConnect    = "connect"
	FunctionDisconnect = "disconnect"
	FunctionDefault    = "default"
	FunctionStream     = "stream"
	FunctionSweep      = "sweep"
)

var functions = []string{FunctionConnect, FunctionDisconnect, FunctionDefault, FunctionStream, FunctionSweep}

var errUnknownFunction = errors.New("lambda: unknown function")

func main() {
	// Lambda sends stdout and stderr to CloudWatch Logs; JSON lines are
	// searchable there with Logs Insights.
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	handler, err := build(context.Background(), os.Getenv(EnvFunction), log)
	if err != nil {
		// Failing before lambda.Start makes Lambda report an init error,
		// which shows the message in the function's logs.
		log.Error("lambda: cannot start", slog.Any("error", err))
		os.Exit(1)
	}
	lambda.Start(handler)
}

// build returns the handler of the named function, wired from the
// environment. It reads the whole configuration, so a bad setting fails at
// the cold start of every function, not at the first request of one.
func build(ctx context.Context, function string, log *slog.Logger) (any, error) {
	if !slices.Contains(functions, function) {
		return nil, fmt.Errorf("%w: %s=%q, want one of %q", errUnknownFunction, EnvFunction, function, functions)
	}
	cfg, err := awslambda.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	verifier, err := cfg.Verifier(ctx, log)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("lambda: AWS config: %w", err)
	}
	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
		}
	})
	st := dynamo.New(ddb, dynamo.WithTableNames(cfg.ConnectionsTable, cfg.RequestsTable))
	// Each connection's record names its own endpoint (from $connect), so
	// the manager's endpoint may stay empty.
	mgr := connection.NewManager(st, connection.NewFastClient(awsCfg, cfg.ManagementEndpoint), cfg.ManagementEndpoint,
		append(cfg.ManagerOptions(), connection.WithLogger(log))...)

	// Channels: subscriptions, offsets and history in the channels table,
	// fan-out through the same manager. Publish from any handler with
	// chans.In(req.Identity.TenantID).Publish(ctx, name, data).
	// Broadcast posts each subscriber through the endpoint its record
	// names (one batched read per fan-out); without a manager endpoint
	// configured, the fan-out here sends one Send per subscriber, which
	// reads the same records one by one.
	var fanOut channel.Broadcaster = mgr
	if cfg.ManagementEndpoint == "" {
		fanOut = channel.SendEach(mgr, 0)
	}
	chans := channel.New(channel.NewDynamoStore(ddb, channel.WithDynamoTable(cfg.ChannelsTable)), fanOut,
		channel.WithNamespace("chat", channel.Namespace{
			HistorySize: channel.DefaultHistorySize, HistoryTTL: channel.DefaultHistoryTTL,
			Presence: true, JoinLeave: true, ClientPublish: true,
		}),
		channel.WithLogger(log))

	router := streamer.NewRouter(st, mgr,
		streamer.WithConnectionStore(st),
		streamer.WithChannels(chans),
		streamer.WithSyncTimeout(cfg.SyncTimeout),
		streamer.WithRequestIDKey([]byte(cfg.RequestIDKey)),
		streamer.WithLogger(log))
	// The demo's actions, the code `streamer dev` runs in process: put
	// your own here (router.HandleFunc, router.HandleAsync).
	demoapp.Register(router, st, fanOut)

	connectOpts := []streamer.ConnectOption{streamer.WithConnectLogger(log), streamer.WithConnectionCleanup(chans)}
	if verifier != nil {
		connectOpts = append(connectOpts, streamer.WithVerifier(verifier))
	}
	conns := streamer.NewConnectHandler(st, connectOpts...)

	// No Queue: on Lambda the requests table's stream brings the
	// processor what the router stores, and a scheduled sweep what no
	// stream record brings.
	proc := streamer.NewProcessor(st, mgr, router.Actions(),
		streamer.WithProcessorConnections(st),
		streamer.WithMaxAttempts(cfg.MaxAttempts),
		streamer.WithProcessorLogger(log))
	// One Embedded Metric Format line per invocation on stdout, which
	// CloudWatch Logs turns into metrics (docs/OPERATING.md).
	emf, err := awslambda.NewEMF(os.Stdout, awslambda.EMFOptions{Namespace: cfg.MetricsNamespace, Manager: mgr, Processor: proc})
	if err != nil {
		return nil, err
	}
	if cfg.MetricsOff {
		emf = nil
	}

	// The channel fan-out runs in the background: it must be done before
	// the invocation returns and Lambda freezes the process, and before
	// the manager's own background work is awaited.
	opts := []awslambda.Option{awslambda.WithFlusher(chans), awslambda.WithFlusher(mgr), awslambda.WithLogger(log)}
	switch function {
	case FunctionConnect:
		return metered(emf, awslambda.HandlerConnect, awslambda.ConnectHandler(conns, opts...)), nil
	case FunctionDisconnect:
		return metered(emf, awslambda.HandlerDisconnect, awslambda.DisconnectHandler(conns, opts...)), nil
	case FunctionDefault:
		return metered(emf, awslambda.HandlerRouter, awslambda.RouterHandler(router, opts...)), nil
	case FunctionStream:
		h := awslambda.StreamHandler(proc, opts...)
		if emf != nil {
			h = emf.Stream(h)
		}
		return h, nil
	case FunctionSweep:
		// Sweep every 5 s for 50 s of each (once a minute) invocation, so
		// that a request whose worker died is taken over about 5 s after
		// its lease ends, not up to a minute (deploy/README.md).
		h := awslambda.SweepHandler(proc, append(opts, awslambda.WithSweepRepeat(5*time.Second, 50*time.Second))...)
		if emf != nil {
			h = emf.Sweep(h)
		}
		return h, nil
	}
	return nil, fmt.Errorf("%w: %q", errUnknownFunction, function)
}

// metered wraps a WebSocket handler with its EMF line, unless metrics are
// off.
func metered(emf *awslambda.EMF, name string, h awslambda.WebSocketHandler) awslambda.WebSocketHandler {
	if emf == nil {
		return h
	}
	return emf.WebSocket(name, h)
}
