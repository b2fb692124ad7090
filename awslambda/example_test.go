package awslambda_test

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// A Lambda deployment's main. The same binary serves the five functions;
// which one runs is chosen here by an environment variable the template
// sets per function (STREAMER_FUNCTION is this example's choice).
func Example() {
	ctx := context.Background()
	cfg, err := awslambda.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
		}
	})
	st := dynamo.New(ddb, dynamo.WithTableNames(cfg.ConnectionsTable, cfg.RequestsTable))
	// Each connection's record names its own endpoint (from $connect), so
	// the manager's own endpoint may stay empty.
	mgr := connection.NewManager(st, connection.NewFastClient(awsCfg, cfg.ManagementEndpoint), cfg.ManagementEndpoint)

	router := streamer.NewRouter(st, mgr, streamer.WithConnectionStore(st), streamer.WithSyncTimeout(cfg.SyncTimeout))
	router.HandleFunc("echo", func(ctx context.Context, req *streamer.Request) (any, error) {
		return req.Payload, nil
	})
	router.HandleAsyncFunc("report", func(ctx context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		_ = p.Report(100, "done")
		return "ok", nil
	})

	verifier, err := cfg.Verifier(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	var connectOpts []streamer.ConnectOption
	if verifier != nil {
		connectOpts = append(connectOpts, streamer.WithVerifier(verifier))
	}
	conns := streamer.NewConnectHandler(st, connectOpts...)

	flush := awslambda.WithFlusher(mgr)
	switch os.Getenv("STREAMER_FUNCTION") {
	case "connect":
		lambda.Start(awslambda.ConnectHandler(conns, flush))
	case "disconnect":
		lambda.Start(awslambda.DisconnectHandler(conns, flush))
	case "default":
		lambda.Start(awslambda.RouterHandler(router, flush))
	case "stream":
		proc := streamer.NewProcessor(st, mgr, router.Actions(), streamer.WithProcessorConnections(st), streamer.WithMaxAttempts(cfg.MaxAttempts))
		lambda.Start(awslambda.StreamHandler(proc, flush))
	case "sweep": // on a schedule, say rate(1 minute)
		proc := streamer.NewProcessor(st, mgr, router.Actions(), streamer.WithProcessorConnections(st), streamer.WithMaxAttempts(cfg.MaxAttempts))
		lambda.Start(awslambda.SweepHandler(proc, flush))
	}
}
