package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
)

func init() {
	register(command{name: "tables", summary: "create Streamer's DynamoDB tables: connections, requests, channels (tables create)", run: runTables})
}

// tablesOptions is the parsed command line of `streamer tables`.
type tablesOptions struct {
	action   string // only "create" so far
	endpoint string // empty: AWS's own endpoint for the region
	prefix   string
	region   string
}

func parseTablesFlags(args []string, stderr io.Writer) (tablesOptions, error) {
	o := tablesOptions{}
	fs := flag.NewFlagSet("tables create", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "", "DynamoDB endpoint URL, e.g. http://127.0.0.1:4567 for dynalite (default: AWS for the region)")
	fs.StringVar(&o.prefix, "prefix", dynamo.DefaultPrefix, "table name prefix: tables are PREFIXconnections, PREFIXrequests and PREFIXchannels")
	fs.StringVar(&o.region, "region", "", "AWS region (default: from the AWS config; us-east-1 with --endpoint)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: streamer tables create [--endpoint URL] [--prefix P] [--region R]")
		fmt.Fprintln(fs.Output(), "\nCreates the connections, requests and channels tables if missing and enables TTL on each. Safe to rerun.")
		fs.PrintDefaults()
	}
	if len(args) == 0 || (args[0] != "create" && args[0] != "-h" && args[0] != "--help") {
		fs.SetOutput(stderr)
		fs.Usage()
		if len(args) == 0 {
			return o, usageError{errors.New("missing action: want create")}
		}
		return o, usageError{fmt.Errorf("unknown action %q: want create", args[0])}
	}
	if args[0] != "create" { // -h
		return o, parseFlags(fs, args, stderr)
	}
	o.action = args[0]
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return o, err
	}
	if o.prefix == "" {
		return o, usageError{errors.New("--prefix must not be empty")}
	}
	return o, nil
}

func runTables(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseTablesFlags(args, stderr)
	if err != nil {
		return err
	}
	client, closeClient, err := dynamoClient(ctx, o.endpoint, o.region, stderr)
	if err != nil {
		return err
	}
	defer closeClient()
	results, err := dynamo.CreateTables(ctx, client, o.prefix)
	for _, r := range results {
		if r.Created {
			fmt.Fprintf(stdout, "created table %s\n", r.Table)
		} else {
			fmt.Fprintf(stdout, "table %s already exists\n", r.Table)
		}
		switch {
		case r.TTLEnabled:
			fmt.Fprintf(stdout, "TTL enabled on %s (attribute %s)\n", r.Table, dynamo.AttrTTL)
		case r.TTLUnsupported != nil:
			fmt.Fprintf(stderr, "warning: %s: this server does not support UpdateTimeToLive; expired items stay hidden from reads but are never deleted\n", r.Table)
		}
	}
	return err
}

// dynamoClient builds a DynamoDB client from the default AWS configuration
// chain. With an endpoint (a local server such as dynalite) it defaults the
// region to us-east-1 and, when no credentials are configured, signs with
// static dummy ones, which local servers accept. The returned func closes
// idle connections; call it when done with the client. streamer dev's
// --dynamodb-endpoint uses it too.
func dynamoClient(ctx context.Context, endpoint, region string, stderr io.Writer) (*dynamodb.Client, func(), error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if endpoint != "" {
		// A custom endpoint means a local server: skip the EC2 metadata
		// service, which off EC2 only answers with errors and delays.
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("load AWS config: %w", err)
	}
	// Own the transport, so that closeIdle reaches the connections the
	// client opens. Start from the loader's, which carries AWS_CA_BUNDLE.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		transport = bc.GetTransport()
	}
	transport.MaxIdleConnsPerHost = 64
	cfg.HTTPClient = &http.Client{
		Transport: transport,
		// Like the SDK's own client: hand 3xx responses to the SDK.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	closeIdle := transport.CloseIdleConnections
	if endpoint == "" {
		if cfg.Region == "" {
			return nil, nil, errors.New("no AWS region: pass --region or set AWS_REGION")
		}
		return dynamodb.NewFromConfig(cfg), closeIdle, nil
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	credCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, credErr := cfg.Credentials.Retrieve(credCtx)
	cancel()
	if credErr != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		fmt.Fprintf(stderr, "note: no AWS credentials found; using dummy credentials for %s\n", endpoint)
		cfg.Credentials = credentials.NewStaticCredentialsProvider("local", "local", "")
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	return client, closeIdle, nil
}
