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
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/runtime/ddbstream"
	"github.com/streamer-go/streamer/runtime/lambdart"
	"github.com/streamer-go/streamer/runtime/local"
	"github.com/streamer-go/streamer/runtime/schedule"
	"github.com/streamer-go/streamer/runtime/template"
	"github.com/streamer-go/streamer/runtime/tlsmux"
)

// templateOptions are the flags of `streamer dev --template`.
type templateOptions struct {
	path        string
	overrides   []string
	concurrency int
	stackName   string
	region      string
	noWatch     bool
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
}

// templateStack is a running template: the gateway in front of the
// template's functions, the DynamoDB stream proxy and the event sources.
type templateStack struct {
	wsURL, endpoint, tlsEndpoint string

	gw        *local.Gateway
	ln        *tlsmux.Listener
	served    chan error
	functions map[string]*lambdart.Function
	proxy     *ddbstream.Proxy
	proxySrv  *http.Server
	stopBg    context.CancelFunc
	bg        sync.WaitGroup
	tmp       string
	log       *slog.Logger
}

// startTemplate loads the template and starts everything it declares. On
// error nothing is left running.
func startTemplate(ctx context.Context, o devOptions, logger *slog.Logger, stdout, stderr io.Writer) (_ *templateStack, err error) {
	t := o.tpl
	overrides, err := template.ParseOverrides(t.overrides)
	if err != nil {
		return nil, usageError{err}
	}
	app, err := template.Load(t.path, template.Options{ParameterOverrides: overrides, StackName: t.stackName, Region: t.region})
	if err != nil {
		return nil, err
	}
	if app.API == nil {
		return nil, fmt.Errorf("%s: no AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET to serve", t.path)
	}
	s := &templateStack{functions: map[string]*lambdart.Function{}, log: logger}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if s.tmp, err = os.MkdirTemp("", "streamer-dev-"); err != nil {
		return nil, err
	}
	undo = append(undo, func() { os.RemoveAll(s.tmp) })

	inner, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	_, port, _ := net.SplitHostPort(inner.Addr().String())
	// Functions build the management endpoint as https://{domainName}/{stage}:
	// the domain must resolve here and the port serve TLS as well.
	domain := "localhost:" + port
	if addrs, lerr := net.LookupHost(app.APIID + ".execute-api.localhost"); lerr == nil && len(addrs) > 0 {
		domain = app.APIID + ".execute-api.localhost:" + port
	} else {
		fmt.Fprintf(stdout, "not emulated: domainName is %s (%s.execute-api.localhost does not resolve on this machine)\n", domain, app.APIID)
	}
	ca, err := tlsmux.NewCA("localhost", "127.0.0.1", "*.execute-api.localhost")
	if err != nil {
		inner.Close()
		return nil, err
	}
	caFile := filepath.Join(s.tmp, "ca.pem")
	if err := ca.WritePEM(caFile); err != nil {
		inner.Close()
		return nil, err
	}
	s.ln = tlsmux.Listen(inner, ca.ServerConfig())
	undo = append(undo, func() { s.ln.Close(); s.ln.Wait() })

	stage := app.API.Stage
	if stage == "" {
		stage = o.stage
		fmt.Fprintf(stdout, "not emulated: the template declares no AWS::ApiGatewayV2::Stage; serving stage %q\n", stage)
	}
	s.wsURL = "ws://" + inner.Addr().String() + "/" + stage
	s.endpoint = "http://" + inner.Addr().String() + "/" + stage
	s.tlsEndpoint = "https://" + domain + "/" + stage
	for _, line := range app.Unsupported {
		fmt.Fprintln(stdout, "not emulated: "+line)
	}

	// DynamoDB: the template's tables at --dynamodb-endpoint, behind the
	// stream proxy when a stream feeds a function.
	dynamoForFunctions := o.dynamoEndpoint
	streams := map[string]*ddbstream.Stream{}
	if len(app.Tables) > 0 && o.dynamoEndpoint == "" {
		fmt.Fprintln(stdout, "not emulated: the template's DynamoDB tables (no --dynamodb-endpoint given; functions reach no DynamoDB)")
	}
	if o.dynamoEndpoint != "" && len(app.Tables) > 0 {
		if err := createTemplateTables(ctx, app, o.dynamoEndpoint, t.region, logger); err != nil {
			return nil, err
		}
		for _, src := range app.StreamSources {
			tbl := app.Tables[src.Table]
			if tbl.StreamViewType == "" {
				return nil, &template.Error{Resource: src.Table, Field: "Properties.StreamSpecification", Err: fmt.Errorf("missing, but %s reads the table's stream", src.Name)}
			}
			if streams[tbl.Name] == nil {
				st, err := ddbstream.NewStream(tbl.Name, tbl.StreamViewType, "arn:aws:dynamodb:"+t.region+":"+app.AccountID+":table/"+tbl.Name+"/stream/local", t.region)
				if err != nil {
					return nil, err
				}
				streams[tbl.Name] = st
			}
		}
		if len(streams) > 0 {
			list := make([]*ddbstream.Stream, 0, len(streams))
			for _, st := range streams {
				list = append(list, st)
			}
			s.proxy = ddbstream.NewProxy(o.dynamoEndpoint, list, logger)
			pln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			s.proxySrv = &http.Server{Handler: s.proxy, ReadHeaderTimeout: 10 * time.Second}
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				_ = s.proxySrv.Serve(pln)
			}()
			undo = append(undo, func() { s.proxySrv.Close(); s.proxy.Close() })
			dynamoForFunctions = "http://" + pln.Addr().String()
		}
	}

	// The functions.
	shims, err := lambdart.Shims(filepath.Join(s.tmp, "shims"))
	if err != nil {
		return nil, err
	}
	env := functionBaseEnv(caFile, dynamoForFunctions)
	// SDK clients built without an endpoint reach the local management API.
	env = append(env, "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI="+s.tlsEndpoint)
	if len(app.Functions) > 0 {
		fmt.Fprintln(stdout, "not emulated: MemorySize and Architectures (functions run on this machine, with its memory)")
	}
	ids := make([]string, 0, len(app.Functions))
	for id := range app.Functions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := app.Functions[id]
		cfg := lambdart.Config{
			Name:        f.Name,
			Dir:         f.CodeDir,
			Handler:     f.Handler,
			Runtime:     f.Runtime,
			Timeout:     f.Timeout,
			MemoryMB:    f.MemoryMB,
			Concurrency: t.concurrency,
			Region:      t.region,
			Output:      stderr,
			Logger:      logger,
		}
		for k, v := range f.Environment {
			cfg.Env = append(cfg.Env, k+"="+v)
		}
		cfg.Env = append(cfg.Env, env...)
		if !t.noWatch {
			cfg.Watch = []string{f.CodeDir}
		}
		if f.GoPackage() {
			out := filepath.Join(s.tmp, "build", id, "bootstrap")
			cfg.Command = []string{out}
			cfg.Dir = filepath.Dir(out)
			cfg.Build = goBuild(f.CodeDir, out)
		} else {
			if cfg.Command, err = lambdart.Command(f.Runtime, f.CodeDir, shims); err != nil {
				field := "Properties.Runtime"
				if strings.HasPrefix(f.Runtime, "provided") {
					field = "Properties.CodeUri" // no bootstrap there
				}
				return nil, &template.Error{Resource: id, Field: field, Err: err}
			}
		}
		fn, err := lambdart.New(cfg)
		if err != nil {
			return nil, err
		}
		s.functions[id] = fn
		undo = append(undo, func() { fn.Close() })
	}

	// The event sources.
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBg = stopBg
	undo = append(undo, func() { stopBg(); s.bg.Wait() })
	for _, src := range app.StreamSources {
		st := streams[app.Tables[src.Table].Name]
		if st == nil || !src.Enabled {
			continue
		}
		es := &ddbstream.Source{
			Name:                    src.Name,
			Stream:                  st,
			Invoke:                  s.functions[src.Function].Invoke,
			BatchSize:               src.BatchSize,
			TrimHorizon:             src.StartingPosition == "TRIM_HORIZON",
			ReportBatchItemFailures: src.ReportBatchItemFailures,
			MaxRetries:              src.MaximumRetryAttempts,
			Bisect:                  src.BisectBatchOnFunctionError,
			Logger:                  logger,
		}
		for i, p := range src.Filters {
			f, err := ddbstream.CompileFilter(p)
			if err != nil {
				return nil, &template.Error{Resource: src.Function, Field: fmt.Sprintf("%s.FilterCriteria.Filters[%d]", src.Name, i), Err: err}
			}
			es.Filters = append(es.Filters, f)
		}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			_ = es.Run(bgCtx)
		}()
	}
	for _, sc := range app.Schedules {
		if !sc.Enabled {
			continue
		}
		parsed, err := schedule.Parse(sc.Expression)
		if err != nil {
			return nil, &template.Error{Resource: sc.Function, Field: sc.Name, Err: err}
		}
		fn := s.functions[sc.Function]
		ruleARN := "arn:aws:events:" + t.region + ":" + app.AccountID + ":rule/" + sc.Name
		input := sc.Input
		payload := func(at time.Time) []byte {
			if input != "" {
				return []byte(input)
			}
			return schedule.Event(ruleARN, t.region, app.AccountID, at)
		}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			_ = schedule.Run(bgCtx, parsed, payload, fn.Invoke, logger)
		}()
	}

	// The API.
	api := &apiAdapter{app: app, stage: stage, functions: s.functions, log: logger, contexts: map[string]map[string]any{}}
	routes := map[string]local.Handler{}
	var twoWay []string
	for _, r := range app.API.Routes {
		fn := s.functions[r.Function]
		if fn == nil {
			continue
		}
		routes[r.Key] = api.handler(r, fn)
		if r.TwoWay {
			twoWay = append(twoWay, r.Key)
		}
	}
	if _, ok := routes[local.RouteDisconnect]; !ok {
		// The authorizer context of a connection is forgotten at its end
		// even without a $disconnect route.
		routes[local.RouteDisconnect] = func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			api.forget(ev.RequestContext.ConnectionID)
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		}
	}
	s.gw, err = local.New(local.Config{
		Stage:                    stage,
		RouteSelectionExpression: app.API.RouteSelectionExpression,
		Routes:                   routes,
		TwoWayRoutes:             twoWay,
		IdleTimeout:              o.idleTimeout,
		MaxLifetime:              o.maxLifetime,
		OutboundQueue:            o.outboundQueue,
		AllowedOrigins:           o.allowedOrigins,
		DomainName:               domain,
		APIID:                    app.APIID,
		Logger:                   logger,
	})
	if err != nil {
		return nil, usageError{err}
	}
	s.served = make(chan error, 1)
	go func() { s.served <- s.gw.Serve(s.ln) }()
	for _, id := range ids {
		f := app.Functions[id]
		fmt.Fprintf(stdout, "function %s: %s %s (%s)\n", id, f.Runtime, f.Handler, f.CodeDir)
	}
	return s, nil
}

// functionBaseEnv is what every function gets besides its own variables:
// dummy credentials (never the host's), the local DynamoDB endpoint, and
// the CA that signs the local TLS endpoint for each runtime's way of
// trusting one.
func functionBaseEnv(caFile, dynamoEndpoint string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_SESSION_TOKEN=local",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CA_BUNDLE=" + caFile,
		"NODE_EXTRA_CA_CERTS=" + caFile,
		"SSL_CERT_FILE=" + caFile,
		"REQUESTS_CA_BUNDLE=" + caFile,
	}
	if dynamoEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+dynamoEndpoint)
	}
	return env
}

// goBuild builds the Go main package in dir into out, as SAM's go1.x
// build method does for a provided runtime.
func goBuild(dir, out string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build in %s: %w\n%s", dir, err, b)
		}
		return nil
	}
}

// createTemplateTables creates the template's tables at endpoint, leaving
// tables that exist alone.
func createTemplateTables(ctx context.Context, app *template.App, endpoint, region string, logger *slog.Logger) error {
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := dynamodb.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ids := make([]string, 0, len(app.Tables))
	for id := range app.Tables {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		in, err := app.Tables[id].CreateTableInput()
		if err != nil {
			return err
		}
		_, err = client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
			logger.Info("streamer dev: table exists", "table", *in.TableName)
			continue
		case err != nil:
			return fmt.Errorf("create table %s (%s) at %s: %w", *in.TableName, id, endpoint, err)
		}
		// The SDK's waiter first retries after 20 s; a local table is
		// ACTIVE within milliseconds, even when the first look still
		// sees it CREATING on a busy machine.
		w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, 30*time.Second); err != nil {
			return fmt.Errorf("wait for table %s: %w", *in.TableName, err)
		}
		logger.Info("streamer dev: table created", "table", *in.TableName)
	}
	return nil
}

// shutdown stops the gateway first ($disconnect still reaches the
// functions), then the event sources, the functions and the proxy.
func (s *templateStack) shutdown(ctx context.Context) error {
	gwErr := s.gw.Shutdown(ctx)
	serveErr := <-s.served
	if errors.Is(serveErr, http.ErrServerClosed) || errors.Is(serveErr, net.ErrClosed) {
		serveErr = nil
	}
	s.ln.Close()
	s.ln.Wait()
	s.stopBg()
	if s.proxySrv != nil {
		s.proxySrv.Close()
	}
	s.bg.Wait()
	for _, f := range s.functions {
		f.Close()
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	os.RemoveAll(s.tmp)
	return errors.Join(gwErr, serveErr)
}

// devTemplateRun is `streamer dev --template`: it serves until ctx ends.
func devTemplateRun(ctx context.Context, o devOptions, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	s, err := startTemplate(ctx, o, logger, stdout, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "WebSocket URL:       %s\n", s.wsURL)
	fmt.Fprintf(stdout, "Management endpoint: %s\n", s.endpoint)
	fmt.Fprintf(stdout, "TLS endpoint:        %s (what functions build from domainName; its CA is in AWS_CA_BUNDLE)\n", s.tlsEndpoint)
	fmt.Fprintln(stdout, "Ctrl-C stops.")
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-s.served:
		s.served <- serveErr
		logger.Error("streamer dev: serve failed", "err", serveErr)
	}
	logger.Info("streamer dev: shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownTimeout)
	defer cancel()
	if err := s.shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
