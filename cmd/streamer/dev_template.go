package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	dynaliteserver "github.com/streamer-go/streamer/runtime/dynalite"
	"github.com/streamer-go/streamer/runtime/lambdart"
	"github.com/streamer-go/streamer/runtime/local"
	"github.com/streamer-go/streamer/runtime/stack"
	"github.com/streamer-go/streamer/runtime/template"
)

// templateOptions are the flags of `streamer dev --template`.
type templateOptions struct {
	path        string
	overrides   []string
	concurrency int
	stackName   string
	region      string
	noWatch     bool
	runtimes    []string // --runtime nodejs22.x=/path/to/node
	nodeSDK     string
	idleReap    time.Duration // --function-idle-timeout
}

// overrideList collects --parameter-overrides, which takes "K=V K2=V2" in
// one flag (as sam does) or the flag repeated.
type overrideList struct{ list *[]string }

func (l overrideList) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, " ")
}

func (l overrideList) Set(v string) error {
	*l.list = append(*l.list, strings.Fields(v)...)
	return nil
}

// templateFlags registers the --template flags on fs.
func templateFlags(fs *flag.FlagSet, o *templateOptions) {
	fs.StringVar(&o.path, "template", "", "run the WebSocket API of this SAM/CloudFormation template (JSON or YAML) with its real Lambda functions, each in its own processes behind a Lambda Runtime API")
	fs.Var(overrideList{&o.overrides}, "parameter-overrides", "template parameter values, \"Key=Value Key2=Value2\" (repeatable), with --template")
	fs.IntVar(&o.concurrency, "function-concurrency", lambdart.DefaultConcurrency, "processes per function at most, with --template")
	fs.StringVar(&o.stackName, "stack-name", "local", "AWS::StackName, with --template")
	fs.StringVar(&o.region, "region", "us-east-1", "AWS::Region and the functions' AWS_REGION, with --template")
	fs.BoolVar(&o.noWatch, "no-watch", false, "do not restart functions when their code changes, with --template")
	fs.Var(overrideList{&o.runtimes}, "runtime", "the interpreter of a Lambda runtime, \"nodejs22.x=/path/to/node\" (repeatable), over node22, python3.12, ... on PATH, with --template")
	fs.DurationVar(&o.idleReap, "function-idle-timeout", lambdart.DefaultIdleTimeout, "stop a function process idle this long, as Lambda reclaims environments (negative keeps them), with --template")
	fs.StringVar(&o.nodeSDK, "node-sdk", defaultNodeSDK(), "folder filled once (npm install) with the AWS SDK for JavaScript v3 that Lambda's Node.js runtimes bundle, for functions that ship none; empty provides none, with --template")
}

// dynaliteOptions is how `streamer dev --template` without
// --dynamodb-endpoint runs a DynamoDB-API server: dynalite from the
// repository's .tools (as `make tools` installs it) when run from the
// repository, else from the user's cache, where it is installed with npm
// the first time.
func dynaliteOptions(progress io.Writer) *dynaliteserver.Options {
	o := &dynaliteserver.Options{Dirs: []string{".tools"}, Install: true, Progress: progress}
	if dir, err := os.UserCacheDir(); err == nil {
		o.InstallDir = filepath.Join(dir, "streamer", "dynalite")
		o.Dirs = append(o.Dirs, o.InstallDir)
	}
	return o
}

// defaultNodeSDK is the user's cache folder for the bundled Node.js SDK.
func defaultNodeSDK() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "streamer", "lambda-node-sdk")
}

// templateConfig turns the command line into the stack's Config.
func templateConfig(o devOptions, logger *slog.Logger, stdout, stderr io.Writer) (stack.Config, error) {
	overrides, err := template.ParseOverrides(o.tpl.overrides)
	if err != nil {
		return stack.Config{}, usageError{err}
	}
	paths := map[string]string{}
	for _, r := range o.tpl.runtimes {
		id, path, ok := strings.Cut(r, "=")
		if !ok || id == "" || path == "" {
			return stack.Config{}, usageError{fmt.Errorf("--runtime %q: want RUNTIME=PATH, e.g. nodejs22.x=/usr/local/bin/node22", r)}
		}
		paths[id] = path
	}
	return stack.Config{
		Template:            o.tpl.path,
		ParameterOverrides:  overrides,
		StackName:           o.tpl.stackName,
		Region:              o.tpl.region,
		Addr:                o.addr,
		Stage:               o.stage,
		DynamoDBEndpoint:    o.dynamoEndpoint,
		Concurrency:         o.tpl.concurrency,
		RuntimePaths:        paths,
		NodeSDK:             o.tpl.nodeSDK,
		Dynalite:            dynaliteOptions(stdout),
		FunctionIdleTimeout: o.tpl.idleReap,
		Watch:               !o.tpl.noWatch,
		IdleTimeout:         o.idleTimeout,
		MaxLifetime:         o.maxLifetime,
		OutboundQueue:       o.outboundQueue,
		AllowedOrigins:      o.allowedOrigins,
		ConfigureGateway:    o.sec.configureTemplateGateway(o.tpl.region),
		Notices:             stdout,
		FunctionOutput:      stderr,
		Logger:              logger,
	}, nil
}

// devTemplateRun is `streamer dev --template`: it serves until ctx ends.
func devTemplateRun(ctx context.Context, o devOptions, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	if err := o.sec.resolve(o.addr); err != nil {
		return err
	}
	cfg, err := templateConfig(o, logger, stdout, stderr)
	if err != nil {
		return err
	}
	tools := &templateTools{o: o, log: logger}
	cfg.Extend = tools.extend
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		tools.shutdown(context.WithoutCancel(ctx))
	}
	if errors.Is(err, local.ErrInvalidConfig) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "WebSocket URL:       %s\n", s.WebSocketURL())
	fmt.Fprintf(stdout, "Management endpoint: %s\n", s.ManagementEndpoint())
	fmt.Fprintf(stdout, "TLS endpoint:        %s (what functions build from domainName; its CA is in AWS_CA_BUNDLE)\n", s.TLSEndpoint())
	fmt.Fprintf(stdout, "Dev console:         %s\n", tools.consoleURL)
	fmt.Fprintf(stdout, "Metrics:             %s\n", tools.metrics.url)
	for _, out := range s.Outputs() {
		fmt.Fprintf(stdout, "Output %s: %s\n", out.Name, out.Value)
	}
	o.sec.printSecurity(stdout, baseOf(s.ManagementEndpoint()), true)
	fmt.Fprintln(stdout, "Ctrl-C stops.")
	select {
	case <-ctx.Done():
	case <-s.Done():
		logger.Error("streamer dev: serve failed", "err", s.Err())
	}
	logger.Info("streamer dev: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	if err := errors.Join(s.Shutdown(sctx), tools.shutdown(sctx)); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
