package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/runtime/awsproxy"
	"github.com/streamer-go/streamer/runtime/ddbstream"
	"github.com/streamer-go/streamer/runtime/dynalite"
	"github.com/streamer-go/streamer/runtime/invokeapi"
	"github.com/streamer-go/streamer/runtime/lambdart"
	"github.com/streamer-go/streamer/runtime/local"
	"github.com/streamer-go/streamer/runtime/schedule"
	"github.com/streamer-go/streamer/runtime/template"
	"github.com/streamer-go/streamer/runtime/tlsmux"
)

// ErrNoWebSocketAPI is returned by Start for a template that declares no
// WebSocket API: neither an AWS::ApiGatewayV2::Api with ProtocolType
// WEBSOCKET nor an AWS::Serverless::WebSocketApi.
var ErrNoWebSocketAPI = errors.New("stack: the template declares no WebSocket API to serve (an AWS::ApiGatewayV2::Api with ProtocolType WEBSOCKET, or an AWS::Serverless::WebSocketApi)")

// Config configures Start. Template is required; the zero value of every
// other field is documented on it.
type Config struct {
	// Template is the path of the SAM/CloudFormation template (JSON or
	// YAML). Relative CodeUri paths start from its folder.
	Template string
	// ParameterOverrides set the template's parameters, as `sam deploy
	// --parameter-overrides` does.
	ParameterOverrides map[string]string
	// StackName is AWS::StackName. Empty means "local".
	StackName string
	// Region is AWS::Region and the functions' AWS_REGION. Empty means
	// "us-east-1".
	Region string

	// Addr is where the API listens (ws:// and wss:// on one port). Empty
	// means "127.0.0.1:0", a free port.
	Addr string
	// Stage is served when the template declares no
	// AWS::ApiGatewayV2::Stage. Empty means local.DefaultStage.
	Stage string
	// DynamoDBEndpoint is the DynamoDB-API server that holds the
	// template's tables (for instance dynalite). Empty means Dynalite's
	// server.
	DynamoDBEndpoint string
	// Dynalite, when DynamoDBEndpoint is empty and the template declares
	// tables, is how Start runs a DynamoDB-API server of its own: dynalite,
	// tables in memory, stopped at Shutdown. Nil (or a dynalite that cannot
	// start) leaves the tables out, with a "not emulated:" line.
	Dynalite *dynalite.Options
	// Concurrency is the processes per function at most. Zero means
	// lambdart.DefaultConcurrency.
	Concurrency int
	// RuntimePaths name the interpreter of a runtime identifier
	// ("nodejs22.x" → "/usr/bin/node22"), over what PATH holds (see
	// lambdart.Runtimes).
	RuntimePaths map[string]string
	// NodeSDK is a folder for the AWS SDK for JavaScript v3 that Lambda's
	// Node.js 18+ runtimes bundle: Start fills it once (npm install, with a
	// progress line on Notices) when a function runs on such a runtime,
	// and functions that ship no SDK find it there. Empty provides none.
	NodeSDK string
	// Watch restarts a function's processes when its code changes.
	Watch bool
	// FunctionIdleTimeout stops a function process idle this long, as
	// Lambda reclaims environments. Zero means
	// lambdart.DefaultIdleTimeout; negative keeps them.
	FunctionIdleTimeout time.Duration

	// IdleTimeout, MaxLifetime, OutboundQueue and AllowedOrigins are the
	// gateway's (see local.Config); zero values mean its defaults.
	IdleTimeout    time.Duration
	MaxLifetime    time.Duration
	OutboundQueue  int
	AllowedOrigins []string
	// Observer, when set, is told of the gateway's connections, route
	// invocations and @connections calls.
	Observer local.Observer
	// Extend, when set, adds to what the API's port serves (a dev console,
	// /metrics): Start calls it once the stage and the address are known
	// (WebSocketURL, ManagementEndpoint, Stage), before the gateway is
	// made. It returns an Observer for the gateway (nil for none) and a
	// function that, given the gateway, returns the handler of the port,
	// which passes what it does not serve itself to the gateway.
	Extend func(*Stack) (local.Observer, func(*local.Gateway) http.Handler, error)
	// ConfigureGateway, when set, adjusts the gateway's configuration
	// before it is created: access rules, signature checks, quotas and
	// faults (see local.Config).
	ConfigureGateway func(*local.Config)

	// Notices receives the start-up lines: what is not emulated and the
	// functions. Nil discards them.
	Notices io.Writer
	// FunctionOutput receives the functions' stdout and stderr, each line
	// prefixed with the function's name. Nil means os.Stderr.
	FunctionOutput io.Writer
	// Logger receives the stack's logs. Nil discards them.
	Logger *slog.Logger
}

// Stack is a running template. Start returns it; Shutdown stops it.
type Stack struct {
	wsURL, endpoint, tlsEndpoint string
	addr                         string // the API's listening address
	dynamoEndpoint               string

	app       *template.App
	gw        *local.Gateway
	srv       *http.Server // serves ln when Extend adds paths; nil: the gateway does
	stage     string
	ln        *tlsmux.Listener
	functions map[string]*lambdart.Function
	proxy     *ddbstream.Proxy
	proxySrv  *http.Server
	aws       *awsproxy.Proxy
	// ddbTransport carries the functions' DynamoDB calls made by hostname.
	ddbTransport *http.Transport
	dynalite     *dynalite.Server
	invoke       *invokeapi.Server
	gwReady      atomic.Pointer[local.Gateway]
	stopBg       context.CancelFunc
	bg           sync.WaitGroup
	tmp          string
	log          *slog.Logger

	done     chan struct{} // closed when Serve returns
	serveErr error         // Serve's error, set before done closes
	shutOnce sync.Once
	shutErr  error
}

// WebSocketURL is the URL clients connect to: ws://ADDR/{stage}.
func (s *Stack) WebSocketURL() string { return s.wsURL }

// DynamoDBEndpoint is the DynamoDB endpoint holding the template's
// tables: Config.DynamoDBEndpoint, or the dynalite Start ran; empty when
// there is none.
func (s *Stack) DynamoDBEndpoint() string { return s.dynamoEndpoint }

// ManagementEndpoint is the @connections endpoint over plain HTTP:
// http://ADDR/{stage}.
func (s *Stack) ManagementEndpoint() string { return s.endpoint }

// TLSEndpoint is the @connections endpoint functions build from the
// events' domainName and stage: https://{domainName}/{stage}, served with
// the certificate authority the functions trust.
func (s *Stack) TLSEndpoint() string { return s.tlsEndpoint }

// Outputs are the template's Outputs with the WebSocket API's AWS
// endpoint replaced by the local one (see template.App.LocalOutputs).
func (s *Stack) Outputs() []template.Output { return s.app.LocalOutputs(s.addr) }

// Stage is the stage the API serves: the template's, or Config.Stage.
func (s *Stack) Stage() string { return s.stage }

// RouteKeys are the route keys of the template's API, sorted.
func (s *Stack) RouteKeys() []string {
	keys := make([]string, 0, len(s.app.API.Routes))
	for _, r := range s.app.API.Routes {
		keys = append(keys, r.Key)
	}
	sort.Strings(keys)
	return keys
}

// Gateway is the local API Gateway in front of the functions.
func (s *Stack) Gateway() *local.Gateway { return s.gw }

// Done is closed when the API stops serving on its own (its listener
// failed); Err then says why.
func (s *Stack) Done() <-chan struct{} { return s.done }

// Start loads the template and starts everything it declares. On error
// nothing is left running. ctx bounds the start-up (table creation); the
// stack runs until Shutdown.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Notices == nil {
		cfg.Notices = io.Discard
	}
	if cfg.FunctionOutput == nil {
		cfg.FunctionOutput = os.Stderr
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.StackName == "" {
		cfg.StackName = "local"
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Stage == "" {
		cfg.Stage = local.DefaultStage
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = lambdart.DefaultConcurrency
	}
	notice := func(format string, args ...any) { fmt.Fprintf(cfg.Notices, format+"\n", args...) }

	app, err := template.Load(cfg.Template, template.Options{ParameterOverrides: cfg.ParameterOverrides, StackName: cfg.StackName, Region: cfg.Region})
	if err != nil {
		return nil, err
	}
	if app.API == nil {
		return nil, fmt.Errorf("%s: %w", cfg.Template, ErrNoWebSocketAPI)
	}
	s := &Stack{app: app, functions: map[string]*lambdart.Function{}, log: logger, done: make(chan struct{})}
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

	inner, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("stack: listen on %s: %w", cfg.Addr, err)
	}
	_, port, _ := net.SplitHostPort(inner.Addr().String())
	// Functions build the management endpoint as https://{domainName}/{stage}:
	// the domain must resolve here and the port serve TLS as well.
	domain := "localhost:" + port
	if addrs, lerr := net.LookupHost(app.APIID + ".execute-api.localhost"); lerr == nil && len(addrs) > 0 {
		domain = app.APIID + ".execute-api.localhost:" + port
	} else {
		notice("not emulated: domainName is %s (%s.execute-api.localhost does not resolve on this machine)", domain, app.APIID)
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
		stage = cfg.Stage
		notice("not emulated: the template declares no AWS::ApiGatewayV2::Stage; serving stage %q", stage)
	}
	s.stage = stage
	s.wsURL = "ws://" + inner.Addr().String() + "/" + stage
	s.endpoint = "http://" + inner.Addr().String() + "/" + stage
	s.tlsEndpoint = "https://" + domain + "/" + stage
	s.addr = inner.Addr().String()
	for _, line := range app.Unsupported {
		notice("not emulated: %s", line)
	}

	if cfg.DynamoDBEndpoint == "" && len(app.Tables) > 0 && cfg.Dynalite != nil {
		srv, err := dynalite.Start(ctx, *cfg.Dynalite)
		if err != nil {
			notice("not emulated: a DynamoDB-API server for the template's tables: %v (pass --dynamodb-endpoint, or install Node.js 20+)", err)
		} else {
			s.dynalite = srv
			undo = append(undo, func() { srv.Close() })
			cfg.DynamoDBEndpoint = srv.Endpoint
			notice("DynamoDB: dynalite %s at %s, tables in memory, started from %s (a DynamoDB endpoint of your own: --dynamodb-endpoint)", dynalite.Version, srv.Endpoint, srv.Dir)
		}
	}
	// DynamoDB: the template's tables at cfg.DynamoDBEndpoint, behind the
	// stream proxy when a stream feeds a function.
	dynamoForFunctions := cfg.DynamoDBEndpoint
	s.dynamoEndpoint = cfg.DynamoDBEndpoint
	streams := map[string]*ddbstream.Stream{}
	if len(app.Tables) > 0 && cfg.DynamoDBEndpoint == "" {
		notice("not emulated: the template's DynamoDB tables (no DynamoDB endpoint given; functions reach no DynamoDB)")
	}
	if cfg.DynamoDBEndpoint != "" && len(app.Tables) > 0 {
		if err := createTables(ctx, app, cfg.DynamoDBEndpoint, cfg.Region, logger); err != nil {
			return nil, err
		}
		for _, src := range app.StreamSources {
			tbl := app.Tables[src.Table]
			if tbl.StreamViewType == "" {
				return nil, &template.Error{Resource: src.Table, Field: "Properties.StreamSpecification", Err: fmt.Errorf("missing, but %s reads the table's stream", src.Name)}
			}
			if streams[tbl.Name] == nil {
				st, err := ddbstream.NewStream(tbl.Name, tbl.StreamViewType, "arn:aws:dynamodb:"+cfg.Region+":"+app.AccountID+":table/"+tbl.Name+"/stream/local", cfg.Region)
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
			s.proxy = ddbstream.NewProxy(cfg.DynamoDBEndpoint, list, logger)
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
			undo = append(undo, func() { s.proxySrv.Close(); s.proxy.Close(); s.bg.Wait() })
			dynamoForFunctions = "http://" + pln.Addr().String()
		}
	}

	// AWS's endpoints, for the functions: each reaches the gateway's
	// management API, DynamoDB and the Invoke API by their hostnames
	// through a door of the AWS-endpoint proxy.
	invokable := map[string]invokeapi.Function{}
	s.invoke = invokeapi.New(invokeapi.Config{Functions: invokable, Region: cfg.Region, AccountID: app.AccountID, Logger: logger})
	undo = append(undo, func() { s.invoke.Shutdown(context.WithoutCancel(ctx)) })
	awsCfg := awsproxy.Config{
		Region:     cfg.Region,
		APIID:      app.APIID,
		ExecuteAPI: http.HandlerFunc(s.serveManagement),
		Lambda:     s.invoke,
		CA:         ca,
		Logger:     logger,
	}
	if dynamoForFunctions != "" {
		s.ddbTransport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
		undo = append(undo, s.ddbTransport.CloseIdleConnections)
		if awsCfg.DynamoDB, err = reverseProxy(dynamoForFunctions, s.ddbTransport); err != nil {
			return nil, err
		}
	}
	if s.aws, err = awsproxy.New(awsCfg); err != nil {
		return nil, err
	}
	undo = append(undo, func() { s.aws.Close() })
	nodeHook, err := awsproxy.WriteNodeHook(filepath.Join(s.tmp, "node"))
	if err != nil {
		return nil, err
	}

	// The functions.
	shims, err := lambdart.Shims(filepath.Join(s.tmp, "shims"))
	if err != nil {
		return nil, err
	}
	runtimes := &lambdart.Runtimes{Paths: cfg.RuntimePaths}
	if cfg.NodeSDK != "" && needsNodeSDK(app) {
		if err := lambdart.NodeSDK(ctx, cfg.NodeSDK, cfg.Notices); err != nil {
			notice("not emulated: the AWS SDK for JavaScript v3 that Lambda's Node.js runtimes bundle (%v); Node.js functions find only the SDK they ship", err)
		} else {
			runtimes.NodeSDK = cfg.NodeSDK
		}
	}
	env := functionBaseEnv(caFile, dynamoForFunctions)
	// SDK clients built without an endpoint reach the local management API.
	env = append(env, "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI="+s.tlsEndpoint)
	if len(app.Functions) > 0 {
		notice("not emulated: MemorySize and Architectures (functions run on this machine, with its memory)")
	}
	ids := make([]string, 0, len(app.Functions))
	for id := range app.Functions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := app.Functions[id]
		fcfg := lambdart.Config{
			Name:          f.Name,
			Dir:           f.CodeDir,
			Handler:       f.Handler,
			Runtime:       f.Runtime,
			Timeout:       f.Timeout,
			MemoryMB:      f.MemoryMB,
			Concurrency:   cfg.Concurrency,
			IdleTimeout:   cfg.FunctionIdleTimeout,
			Region:        cfg.Region,
			Output:        cfg.FunctionOutput,
			Logger:        logger,
			ProactiveInit: true,
		}
		for k, v := range f.Environment {
			fcfg.Env = append(fcfg.Env, k+"="+v)
		}
		fcfg.Env = append(fcfg.Env, env...)
		door, err := s.aws.Listen(f.Name)
		if err != nil {
			return nil, err
		}
		handler, nodeOptions := builtFunction(f)
		fcfg.Handler = handler
		fcfg.Env = append(fcfg.Env, awsproxy.Env(door, nodeHook, nodeOptions)...)
		fcfg.Env = append(fcfg.Env, awsproxy.LocalHTTPEnv(domain, "localhost:"+port, "127.0.0.1:"+port))
		if cfg.Watch {
			fcfg.Watch = []string{f.CodeDir}
			if f.MakeBuilt() {
				fcfg.Watch = []string{f.Build.SourceDir, f.Build.Makefile}
			}
		}
		code, build, err := functionCode(f, filepath.Join(s.tmp, "build", id), notice)
		if err != nil {
			return nil, err
		}
		fcfg.Dir, fcfg.Build = code, build
		if build != nil && strings.HasPrefix(f.Runtime, "provided") {
			// The bootstrap is there once the build has run.
			fcfg.Command = []string{filepath.Join(code, "bootstrap")}
		} else {
			launch, err := runtimes.Launch(ctx, f.Name, f.Runtime, code, shims)
			if err != nil {
				field := "Properties.Runtime"
				if strings.HasPrefix(f.Runtime, "provided") {
					field = "Properties.CodeUri" // no bootstrap there
				}
				return nil, &template.Error{Resource: id, Field: field, Err: err}
			}
			fcfg.Command = launch.Command
			fcfg.Env = append(fcfg.Env, launch.Env...)
			for _, n := range launch.Notes {
				notice("not emulated: %s", n)
			}
		}
		fn, err := lambdart.New(fcfg)
		if err != nil {
			return nil, err
		}
		s.functions[id] = fn
		invokable[f.Name] = fn
		undo = append(undo, func() { fn.Close() })
	}
	notice("AWS endpoints: functions reach https://%s.execute-api.%s.amazonaws.com/%s, dynamodb.%s.amazonaws.com and lambda.%s.amazonaws.com here (HTTPS_PROXY, and a preloaded hook for Node.js); other AWS services answer NotEmulated", app.APIID, cfg.Region, stage, cfg.Region, cfg.Region)

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
		ruleARN := "arn:aws:events:" + cfg.Region + ":" + app.AccountID + ":rule/" + sc.Name
		input := sc.Input
		region := cfg.Region
		payload := func(at time.Time) []byte {
			if input != "" {
				return []byte(input)
			}
			return schedule.Event(ruleARN, region, app.AccountID, at)
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
	timeouts := map[string]time.Duration{}
	var twoWay []string
	connectIAM := false
	for _, r := range app.API.Routes {
		fn := s.functions[r.Function]
		if fn == nil {
			continue
		}
		routes[r.Key] = api.handler(r, fn)
		connectIAM = connectIAM || (r.Key == local.RouteConnect && r.IAM)
		if r.IntegrationTimeout > 0 {
			timeouts[r.Key] = r.IntegrationTimeout
		}
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
	var extObs local.Observer
	var wrap func(*local.Gateway) http.Handler
	if cfg.Extend != nil {
		if extObs, wrap, err = cfg.Extend(s); err != nil {
			return nil, err
		}
	}
	gwCfg := local.Config{
		Stage:                    stage,
		RouteSelectionExpression: app.API.RouteSelectionExpression,
		Routes:                   routes,
		TwoWayRoutes:             twoWay,
		RouteTimeouts:            timeouts,
		IdleTimeout:              cfg.IdleTimeout,
		MaxLifetime:              cfg.MaxLifetime,
		OutboundQueue:            cfg.OutboundQueue,
		AllowedOrigins:           cfg.AllowedOrigins,
		DomainName:               domain,
		APIID:                    app.APIID,
		ConnectIAM:               connectIAM,
		AccountID:                app.AccountID,
		Observer:                 local.JoinObservers(cfg.Observer, extObs),
		Logger:                   logger,
	}
	if cfg.ConfigureGateway != nil {
		cfg.ConfigureGateway(&gwCfg)
	}
	// Functions reach the management API by its AWS hostname too (through
	// the AWS-endpoint proxy, which keeps the Host they signed).
	gwCfg.AllowedHosts = append(gwCfg.AllowedHosts, app.APIID+".execute-api."+cfg.Region+".amazonaws.com")
	if s.gw, err = local.New(gwCfg); err != nil {
		return nil, err
	}
	s.gwReady.Store(s.gw)
	if wrap != nil {
		// The port's own server: what Extend adds, then the gateway.
		s.srv = local.ServerTimeouts(&http.Server{Handler: wrap(s.gw), ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)})
	}
	go func() {
		if s.srv != nil {
			s.serveErr = s.srv.Serve(s.ln)
		} else {
			s.serveErr = s.gw.Serve(s.ln)
		}
		close(s.done)
	}()
	for _, id := range ids {
		f := app.Functions[id]
		notice("function %s: %s %s (%s)", id, f.Runtime, f.Handler, f.CodeDir)
	}
	return s, nil
}

// Err is why the API stopped serving before Shutdown; nil while it
// serves.
func (s *Stack) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	if errors.Is(s.serveErr, http.ErrServerClosed) || errors.Is(s.serveErr, net.ErrClosed) {
		return nil
	}
	return s.serveErr
}

// Shutdown stops the gateway first ($disconnect still reaches the
// functions), then the event sources, the functions and the stream proxy.
// Connections still open when ctx ends are dropped; Shutdown returns
// ctx's error then. A second call returns the first one's result.
func (s *Stack) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown(ctx) })
	return s.shutErr
}

func (s *Stack) shutdown(ctx context.Context) error {
	var srvErr error
	if s.srv != nil {
		// The console's and /metrics' requests end; the gateway's
		// Shutdown then closes the WebSockets, which http.Server does not
		// track once hijacked.
		srvErr = s.srv.Shutdown(ctx)
	}
	gwErr := s.gw.Shutdown(ctx)
	<-s.done
	serveErr := s.Err()
	s.ln.Close()
	s.ln.Wait()
	invokeErr := s.invoke.Shutdown(ctx)
	s.stopBg()
	if s.proxySrv != nil {
		s.proxySrv.Close()
	}
	s.bg.Wait()
	for _, f := range s.functions {
		f.Close()
	}
	s.aws.Close()
	if s.ddbTransport != nil {
		s.ddbTransport.CloseIdleConnections()
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.dynalite != nil {
		s.dynalite.Close()
	}
	os.RemoveAll(s.tmp)
	return errors.Join(srvErr, gwErr, serveErr, invokeErr)
}

// serveManagement serves the management API of the WebSocket API to the
// functions' calls to its execute-api hostname, once the gateway exists
// (an event source may run a function before).
func (s *Stack) serveManagement(w http.ResponseWriter, r *http.Request) {
	gw := s.gwReady.Load()
	if gw == nil {
		w.Header().Set("X-Amzn-Errortype", "ServiceUnavailableException")
		http.Error(w, `{"message":"the local WebSocket API is starting"}`, http.StatusServiceUnavailable)
		return
	}
	gw.ServeHTTP(w, r)
}

// reverseProxy forwards requests to endpoint through transport, keeping
// the Host the client signed.
func reverseProxy(endpoint string, transport http.RoundTripper) (http.Handler, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("stack: DynamoDB endpoint %q: want a URL", endpoint)
	}
	return &httputil.ReverseProxy{Transport: transport, Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}}, nil
}

// needsNodeSDK reports whether a function runs on a Node.js runtime that
// bundles the SDK v3 (nodejs18.x and later) and no node_modules in its
// code folder or above it holds an @aws-sdk package, or its esbuild
// bundle leaves @aws-sdk packages out, so it relies on the SDK Lambda
// bundles.
func needsNodeSDK(app *template.App) bool {
	for _, f := range app.Functions {
		v, ok := strings.CutPrefix(f.Runtime, "nodejs")
		if !ok {
			continue
		}
		if major, err := strconv.Atoi(strings.TrimSuffix(v, ".x")); err != nil || major < 18 {
			continue
		}
		if f.Build.Method == template.BuildEsbuild {
			// The bundle runs from the artifacts folder, with only the
			// packages External leaves out to find.
			if esbuildLeavesOutSDK(f.Build.Properties) {
				return true
			}
			continue
		}
		if !shipsSDK(f.CodeDir) {
			return true
		}
	}
	return false
}

// shipsSDK reports whether Node's module lookup from dir finds an
// @aws-sdk folder.
func shipsSDK(dir string) bool {
	for {
		if st, err := os.Stat(filepath.Join(dir, "node_modules", "@aws-sdk")); err == nil && st.IsDir() {
			return true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}
