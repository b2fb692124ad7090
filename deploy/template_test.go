package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/runtime/local"
)

// envFunction is the variable examples/lambda reads to pick its handler
// (its EnvFunction); lambda_test.go proves the binary serves each route
// with the value the template gives it. Every other variable the template
// sets must be one awslambda.ConfigFromEnv reads.
const envFunction = "STREAMER_FUNCTION"

// routeFunctions maps each route (and the stream and the sweep schedule)
// to the handler the template's function for it must select.
var routeFunctions = map[string]string{
	local.RouteConnect:    "connect",
	local.RouteDisconnect: "disconnect",
	local.RouteDefault:    "default",
	"stream":              "stream",
	"sweep":               "sweep",
}

// anonymous and withJWT are parameter sets that deploy.
var (
	anonymous = map[string]string{"AllowAnonymous": "true"}
	withJWT   = map[string]string{
		"TablePrefix":    "jwt-app-",
		"JWTAlgorithms":  "RS256, ES256",
		"JWTIssuer":      "https://issuer.example",
		"JWTAudience":    "streamer-clients",
		"JWKSFile":       "/var/task/jwks.json",
		"JWTTenantClaim": "org",
		"SyncTimeout":    "7s",
		"MaxAttempts":    "5",
	}
)

func mustStack(t testing.TB, tpl *template, overrides map[string]string) *stack {
	t.Helper()
	s, err := newStack(tpl, overrides)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// functions returns the template's functions by the handler they select.
func functions(t testing.TB, s *stack) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range s.tpl.resourcesOfType("AWS::Serverless::Function") {
		sel, ok := s.functionEnv(t, name)[envFunction]
		if !ok {
			t.Errorf("function %s sets no %s", name, envFunction)
			continue
		}
		if other, dup := out[sel]; dup {
			t.Errorf("functions %s and %s both select %q", other, name, sel)
		}
		out[sel] = name
	}
	return out
}

func TestTemplateIsValidSAM(t *testing.T) { checkTemplateIsValidSAM(t, loadTemplate(t, templateFile)) }

func checkTemplateIsValidSAM(t testing.TB, tpl *template) {
	if tpl.FormatVersion != "2010-09-09" {
		t.Errorf("AWSTemplateFormatVersion = %q", tpl.FormatVersion)
	}
	if tpl.Transform != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %q, want the SAM transform", tpl.Transform)
	}
	s := mustStack(t, tpl, anonymous)
	for name, r := range tpl.Resources {
		if !knownTypes[r.Type] {
			t.Errorf("resource %s has type %q, not one of the known types", name, r.Type)
		}
		for _, dep := range r.DependsOn {
			if _, ok := tpl.Resources[dep]; !ok {
				t.Errorf("resource %s depends on unknown %s", name, dep)
			}
		}
		// Every Ref, Fn::Sub and Fn::GetAtt names something that exists.
		s.resolved(t, name)
	}
	if _, err := s.resolve(object{"Globals": tpl.Globals.Function}); err != nil {
		t.Errorf("Globals: %v", err)
	}
	for name, o := range tpl.Outputs {
		if _, err := s.resolve(o.Value); err != nil {
			t.Errorf("output %s: %v", name, err)
		}
	}
	// Each parameter is used: an unused one would be a setting that
	// changes nothing.
	used := map[string]bool{}
	references(object{"Globals": tpl.Globals.Function, "Resources": tpl.Resources, "Outputs": tpl.Outputs}, used)
	for name := range tpl.Parameters {
		if !used[name] {
			t.Errorf("parameter %s is never used", name)
		}
	}
}

func TestFunctionsRunTheExampleBinary(t *testing.T) {
	checkFunctionsRunTheExampleBinary(t, loadTemplate(t, templateFile))
}

func checkFunctionsRunTheExampleBinary(t testing.TB, tpl *template) {
	s := mustStack(t, tpl, anonymous)
	byHandler := functions(t, s)
	if got, want := slicesOfKeys(byHandler), slicesOfValues(routeFunctions); !slices.Equal(got, want) {
		t.Fatalf("functions select %q, want one function per handler %q", got, want)
	}
	for _, name := range byHandler {
		if got := s.functionProp(t, name, "Runtime"); got != "provided.al2023" {
			t.Errorf("%s: Runtime = %v", name, got)
		}
		if got := s.functionProp(t, name, "Handler"); got != "bootstrap" {
			t.Errorf("%s: Handler = %v", name, got)
		}
		if got := s.functionProp(t, name, "Architectures"); !reflect.DeepEqual(got, []any{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want arm64 (the README builds GOARCH=arm64)", name, got)
		}
		// README.md builds bootstrap into deploy/build/.
		if got := s.functionProp(t, name, "CodeUri"); got != "build/" {
			t.Errorf("%s: CodeUri = %v, want build/", name, got)
		}
	}
	// A sync action's deadline must end before the function's: API
	// Gateway waits 29 s at most.
	for _, params := range []map[string]string{anonymous, withJWT} {
		s := mustStack(t, s.tpl, params)
		sync, err := time.ParseDuration(s.params["SyncTimeout"])
		if err != nil {
			t.Fatal(err)
		}
		timeout, err := strconv.Atoi(fmt.Sprint(s.functionProp(t, byHandler["default"], "Timeout")))
		if err != nil {
			t.Fatal(err)
		}
		if sync >= time.Duration(timeout)*time.Second || timeout > 29 {
			t.Errorf("SyncTimeout %v, $default function timeout %ds: want sync < timeout <= 29s", sync, timeout)
		}
	}
}

func slicesOfValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// clearStreamerEnv unsets (for the test) every STREAMER_ variable of the
// process, so only what a test sets is seen by ConfigFromEnv.
func clearStreamerEnv(t testing.TB) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "STREAMER_") {
			t.Setenv(k, "")
		}
	}
}

func setEnv(t testing.TB, env map[string]string) {
	clearStreamerEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
}

type configResult struct {
	cfg awslambda.Config
	ok  bool
}

func configFromEnv(t testing.TB, env map[string]string) configResult {
	setEnv(t, env)
	cfg, err := awslambda.ConfigFromEnv()
	if err != nil && !errors.Is(err, awslambda.ErrConfig) {
		t.Fatalf("ConfigFromEnv: %v does not wrap ErrConfig", err)
	}
	if len(cfg.JWTAlgorithms) == 0 {
		cfg.JWTAlgorithms = nil // no algorithms, however spelt
	}
	return configResult{cfg, err == nil}
}

// Every variable the template sets (but the handler selector) is read by
// awslambda.ConfigFromEnv: changing its value changes what ConfigFromEnv
// returns. A variable the code never reads changes nothing and fails.
func TestEnvironmentIsReadByConfigFromEnv(t *testing.T) {
	checkEnvironmentIsReadByConfigFromEnv(t, loadTemplate(t, templateFile))
}

func checkEnvironmentIsReadByConfigFromEnv(t testing.TB, tpl *template) {
	for _, params := range []map[string]string{anonymous, withJWT} {
		s := mustStack(t, tpl, params)
		for _, fn := range functions(t, s) {
			env := s.functionEnv(t, fn)
			base := configFromEnv(t, env)
			for name := range env {
				if name == envFunction {
					continue
				}
				read := false
				for _, probe := range []string{"probe-value", "", "1"} {
					if probe == env[name] {
						continue
					}
					changed := withVar(env, name, probe)
					if got := configFromEnv(t, changed); !reflect.DeepEqual(got, base) {
						read = true
						break
					}
				}
				if !read {
					t.Errorf("%s sets %s, which awslambda.ConfigFromEnv does not read", fn, name)
				}
			}
		}
	}
}

// withVar returns a copy of env with name set to v.
func withVar(env map[string]string, name, v string) map[string]string {
	out := make(map[string]string, len(env))
	for k, e := range env {
		out[k] = e
	}
	out[name] = v
	return out
}

// Each function's environment, and nothing else, gives ConfigFromEnv the
// tables the template creates and the settings its parameters name.
func TestEnvironmentGivesTheDeployedConfig(t *testing.T) {
	checkEnvironmentGivesTheDeployedConfig(t, loadTemplate(t, templateFile))
}

func checkEnvironmentGivesTheDeployedConfig(t testing.TB, tpl *template) {
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   awslambda.Config
	}{
		{"anonymous with defaults", anonymous, awslambda.Config{
			ConnectionsTable: dynamo.ConnectionsTable(dynamo.DefaultPrefix),
			RequestsTable:    dynamo.RequestsTable(dynamo.DefaultPrefix),
			ChannelsTable:    dynamo.ChannelsTable(dynamo.DefaultPrefix),
			SyncTimeout:      10 * time.Second,
			MaxAttempts:      3,
			AllowAnonymous:   true,
			MetricsNamespace: "Streamer",
		}},
		{"JWT", withJWT, awslambda.Config{
			ConnectionsTable: dynamo.ConnectionsTable("jwt-app-"),
			RequestsTable:    dynamo.RequestsTable("jwt-app-"),
			ChannelsTable:    dynamo.ChannelsTable("jwt-app-"),
			SyncTimeout:      7 * time.Second,
			MaxAttempts:      5,
			JWTAlgorithms:    []string{"RS256", "ES256"},
			JWTIssuer:        "https://issuer.example",
			JWTAudience:      "streamer-clients",
			JWKSFile:         "/var/task/jwks.json",
			JWTTenantClaim:   "org",
			MetricsNamespace: "Streamer",
		}},
	} {
		func() {
			s := mustStack(t, tpl, tc.params)
			tables := templateTables(t, s)
			if _, ok := tables[tc.want.ConnectionsTable]; !ok {
				t.Errorf("%s: template creates %v, not %s", tc.name, slicesOfKeys(tables), tc.want.ConnectionsTable)
			}
			if _, ok := tables[tc.want.RequestsTable]; !ok {
				t.Errorf("%s: template creates %v, not %s", tc.name, slicesOfKeys(tables), tc.want.RequestsTable)
			}
			for sel, fn := range functions(t, s) {
				got := configFromEnv(t, s.functionEnv(t, fn))
				if !got.ok {
					t.Errorf("%s: %s (%s): ConfigFromEnv fails on the template's environment", tc.name, fn, sel)
					continue
				}
				if !reflect.DeepEqual(got.cfg, tc.want) {
					t.Errorf("%s: %s: ConfigFromEnv = %+v\nwant %+v", tc.name, fn, got.cfg, tc.want)
				}
			}
		}()
	}
}

// The template's Rules refuse at deploy time exactly the parameter values
// that ConfigFromEnv would refuse at every cold start, so a stack never
// deploys functions that cannot start, and no valid setting is refused.
func TestRulesRefuseWhatConfigFromEnvRefuses(t *testing.T) {
	checkRulesRefuseWhatConfigFromEnvRefuses(t, loadTemplate(t, templateFile))
}

func checkRulesRefuseWhatConfigFromEnvRefuses(t testing.TB, tpl *template) {
	n := 0
	for _, alg := range []string{"", "RS256"} {
		for _, key := range []string{"", "/var/task/jwt.pem"} {
			for _, jwks := range []string{"", "/var/task/jwks.json"} {
				for _, anon := range []string{"true", "false"} {
					for _, jwksURL := range []string{"", "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json"} {
						params := map[string]string{"JWTAlgorithms": alg, "JWTKeyFile": key, "JWKSFile": jwks, "AllowAnonymous": anon, "JWKSURL": jwksURL}
						s := mustStack(t, tpl, params)
						pass, why, err := s.rulesPass()
						if err != nil {
							t.Fatal(err)
						}
						for _, fn := range functions(t, s) {
							if got := configFromEnv(t, s.functionEnv(t, fn)); got.ok != pass {
								t.Errorf("%v: rules pass = %v (%s), ConfigFromEnv ok = %v for %s", params, pass, why, got.ok, fn)
							}
						}
						if !pass {
							n++
						}
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no parameter set was refused: the rules check nothing")
	}
	// The defaults choose no authentication: deploying them is refused.
	if pass, _, _ := mustStack(t, tpl, nil).rulesPass(); pass {
		t.Error("the default parameters deploy without choosing JWT or anonymous access")
	}
}

// The API routes with the expression the router's protocol is built for,
// each route reaches the function that runs its handler, and API Gateway
// may invoke exactly those functions.
func TestRoutesReachTheirHandlers(t *testing.T) {
	checkRoutesReachTheirHandlers(t, loadTemplate(t, templateFile))
}

func checkRoutesReachTheirHandlers(t testing.TB, tpl *template) {
	s := mustStack(t, tpl, anonymous)
	apis := s.tpl.resourcesOfType("AWS::ApiGatewayV2::Api")
	if len(apis) != 1 {
		t.Fatalf("want one API, got %v", apis)
	}
	api := s.resolved(t, apis[0])
	apiID, _ := s.ref(apis[0])
	if api["ProtocolType"] != "WEBSOCKET" {
		t.Errorf("ProtocolType = %v", api["ProtocolType"])
	}
	if api["RouteSelectionExpression"] != local.DefaultRouteSelection {
		t.Errorf("RouteSelectionExpression = %v, want %s (what streamer dev emulates)", api["RouteSelectionExpression"], local.DefaultRouteSelection)
	}
	// The selected field is the one the protocol's requests carry.
	path := strings.TrimPrefix(fmt.Sprint(api["RouteSelectionExpression"]), "$request.body.")
	field, ok := reflect.TypeFor[protocol.Inbound]().FieldByName("Action")
	if !ok || strings.Split(field.Tag.Get("json"), ",")[0] != path {
		t.Errorf("route selection reads %q; protocol.Inbound.Action is tagged %q", path, field.Tag.Get("json"))
	}

	byHandler := functions(t, s)
	routed := map[string]bool{}
	for _, name := range s.tpl.resourcesOfType("AWS::ApiGatewayV2::Route") {
		route := s.resolved(t, name)
		key := fmt.Sprint(route["RouteKey"])
		if route["ApiId"] != apiID {
			t.Errorf("route %s belongs to API %v", key, route["ApiId"])
		}
		if routed[key] {
			t.Errorf("route %s twice", key)
		}
		routed[key] = true
		want, ok := routeFunctions[key]
		if !ok {
			t.Errorf("route %s: no Streamer handler serves it (the router takes every message on $default)", key)
			continue
		}
		integ, ok := strings.CutPrefix(fmt.Sprint(route["Target"]), "integrations/physical-id-of-")
		if !ok || s.tpl.Resources[integ].Type != "AWS::ApiGatewayV2::Integration" {
			t.Errorf("route %s targets %v, not an integration", key, route["Target"])
			continue
		}
		in := s.resolved(t, integ)
		fnArn := attrValue(byHandler[want], "Arn")
		if in["IntegrationType"] != "AWS_PROXY" || !strings.Contains(fmt.Sprint(in["IntegrationUri"]), "/functions/"+fnArn+"/invocations") || in["ApiId"] != apiID {
			t.Errorf("route %s: integration %v does not proxy to %s", key, in, byHandler[want])
		}
		if !invokable(t, s, byHandler[want], fmt.Sprint(apiID), key) {
			t.Errorf("route %s: no Lambda permission lets API Gateway invoke %s", key, byHandler[want])
		}
	}
	for _, key := range []string{local.RouteConnect, local.RouteDisconnect, local.RouteDefault} {
		if !routed[key] {
			t.Errorf("no %s route", key)
		}
	}
}

func invokable(t testing.TB, s *stack, fn, apiID, route string) bool {
	for _, name := range s.tpl.resourcesOfType("AWS::Lambda::Permission") {
		p := s.resolved(t, name)
		src := fmt.Sprint(p["SourceArn"])
		if p["FunctionName"] == "physical-id-of-"+fn && p["Action"] == "lambda:InvokeFunction" &&
			p["Principal"] == "apigateway.amazonaws.com" &&
			strings.HasPrefix(src, "arn:aws:execute-api:"+pseudoParams["AWS::Region"]+":"+pseudoParams["AWS::AccountId"]+":"+apiID+"/") &&
			(strings.HasSuffix(src, "/"+route) || strings.HasSuffix(src, "/*")) {
			return true
		}
	}
	return false
}

// Each function may read and write the three tables (and their indexes), the
// functions that send may post to the stage's @connections, and the
// processor may read the requests stream.
func TestPoliciesCoverWhatTheHandlersDo(t *testing.T) {
	checkPoliciesCoverWhatTheHandlersDo(t, loadTemplate(t, templateFile))
}

func checkPoliciesCoverWhatTheHandlersDo(t testing.TB, tpl *template) {
	s := mustStack(t, tpl, anonymous)
	apiID, _ := s.ref(s.tpl.resourcesOfType("AWS::ApiGatewayV2::Api")[0])
	tables := map[string]string{} // logical ID → name
	for _, name := range s.tpl.resourcesOfType("AWS::DynamoDB::Table") {
		v, _ := s.ref(name)
		tables[name] = fmt.Sprint(v)
	}
	manage := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/*/@connections/*", pseudoParams["AWS::Region"], pseudoParams["AWS::AccountId"], apiID, s.params["StageName"])
	for handler, fn := range functions(t, s) {
		var crud []string
		var statements []object
		policies, _ := s.resolved(t, fn)["Policies"].([]any)
		for _, p := range policies {
			p, _ := p.(object)
			if c, ok := p["DynamoDBCrudPolicy"].(object); ok {
				crud = append(crud, fmt.Sprint(c["TableName"]))
			}
			if st, ok := p["Statement"].([]any); ok {
				for _, e := range st {
					statements = append(statements, e.(object))
				}
			}
		}
		for logical, name := range tables {
			if !slices.Contains(crud, name) {
				t.Errorf("%s: no DynamoDBCrudPolicy on %s (%s)", fn, logical, name)
			}
		}
		allows := func(action, res string) bool {
			for _, st := range statements {
				acts, _ := st["Action"].([]any)
				if st["Effect"] == "Allow" && slices.Contains(acts, any(action)) && st["Resource"] == res {
					return true
				}
			}
			return false
		}
		sends := handler == "default" || handler == "stream" || handler == "sweep"
		if sends && !allows("execute-api:ManageConnections", manage) {
			t.Errorf("%s: may not post to %s", fn, manage)
		}
		if handler == "stream" {
			for _, a := range []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"} {
				if !allows(a, attrValue("RequestsTable", "StreamArn")) {
					t.Errorf("%s: no %s on the requests stream", fn, a)
				}
			}
		}
	}
}

// eventTypes says which SAM event type each handler is invoked by (the
// routes are invoked by API Gateway through integrations instead).
var eventTypes = map[string]string{"DynamoDB": "stream", "Schedule": "sweep"}

// functionEvent returns the one event source of type typ: the SAM event
// of the function that selects the handler eventTypes names for it.
func functionEvent(t testing.TB, s *stack, typ string) (fn string, props object) {
	t.Helper()
	fn = functions(t, s)[eventTypes[typ]]
	var found []object
	for _, name := range s.tpl.resourcesOfType("AWS::Serverless::Function") {
		evs, _ := s.resolved(t, name)["Events"].(object)
		for evName, ev := range evs {
			ev := ev.(object)
			evType := fmt.Sprint(ev["Type"])
			if _, ok := eventTypes[evType]; !ok {
				t.Errorf("%s: event %s of type %s, which no handler takes", name, evName, evType)
				continue
			}
			if evType != typ {
				continue
			}
			if name != fn {
				t.Errorf("%s has a %s event but does not select the %s handler", name, typ, eventTypes[typ])
			}
			found = append(found, ev["Properties"].(object))
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s event, got %d", typ, len(found))
	}
	return fn, found[0]
}

// streamEvent returns the processor's event source.
func streamEvent(t testing.TB, s *stack) (fn string, props object) {
	t.Helper()
	return functionEvent(t, s, "DynamoDB")
}

func TestSweepSchedule(t *testing.T) { checkSweepSchedule(t, loadTemplate(t, templateFile)) }

// The sweep runs on the schedule the parameter gives, with the stream
// processor's timeout (it runs the same async handlers), and a failed
// sweep is not retried: the next scheduled one is the retry.
func checkSweepSchedule(t testing.TB, tpl *template) {
	for _, sched := range []string{"rate(1 minute)", "cron(0/5 * * * ? *)"} {
		s := mustStack(t, tpl, map[string]string{"AllowAnonymous": "true", "SweepSchedule": sched})
		fn, ev := functionEvent(t, s, "Schedule")
		if ev["Schedule"] != sched {
			t.Errorf("Schedule = %v, want the SweepSchedule parameter %q", ev["Schedule"], sched)
		}
		stream := functions(t, s)["stream"]
		if got, want := s.functionProp(t, fn, "Timeout"), s.functionProp(t, stream, "Timeout"); got != want {
			t.Errorf("%s timeout %v, stream processor's %v: want the same", fn, got, want)
		}
		if cfg, _ := s.functionProp(t, fn, "EventInvokeConfig").(object); cfg["MaximumRetryAttempts"] != float64(0) {
			t.Errorf("%s: EventInvokeConfig = %v, want MaximumRetryAttempts 0", fn, cfg)
		}
	}
}

func TestStreamEventSource(t *testing.T) { checkStreamEventSource(t, loadTemplate(t, templateFile)) }

func checkStreamEventSource(t testing.TB, tpl *template) {
	s := mustStack(t, tpl, anonymous)
	_, ev := streamEvent(t, s)
	if ev["Stream"] != attrValue("RequestsTable", "StreamArn") {
		t.Errorf("Stream = %v, want the requests table's", ev["Stream"])
	}
	if name, _ := s.ref("RequestsTable"); name != dynamo.RequestsTable(dynamo.DefaultPrefix) {
		t.Errorf("RequestsTable is %v, not the requests table", name)
	}
	// StreamHandler reports failed records instead of failing the batch.
	if !reflect.DeepEqual(ev["FunctionResponseTypes"], []any{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %v, want ReportBatchItemFailures", ev["FunctionResponseTypes"])
	}
	if ev["StartingPosition"] != "LATEST" && ev["StartingPosition"] != "TRIM_HORIZON" {
		t.Errorf("StartingPosition = %v", ev["StartingPosition"])
	}
}

// The event source's filter lets through exactly the records
// awslambda.PendingRequest says need work, for every status and change, so
// progress and completion writes never start the processor and no queued
// request is filtered out.
func TestStreamFilterSelectsPendingRequests(t *testing.T) {
	checkStreamFilterSelectsPendingRequests(t, loadTemplate(t, templateFile))
}

func checkStreamFilterSelectsPendingRequests(t testing.TB, tpl *template) {
	s := mustStack(t, tpl, anonymous)
	_, ev := streamEvent(t, s)
	patterns := filterPatterns(t, ev)
	statuses := []store.Status{store.StatusPending, store.StatusProcessing, store.StatusCompleted, store.StatusFailed, store.StatusCancelled}
	matched := 0
	for _, op := range []events.DynamoDBOperationType{events.DynamoDBOperationTypeInsert, events.DynamoDBOperationTypeModify, events.DynamoDBOperationTypeRemove} {
		for _, status := range statuses {
			for _, oldStatus := range append([]store.Status{""}, statuses...) {
				rec := streamRecord(op, status, oldStatus)
				_, pending, err := awslambda.PendingRequest(rec)
				if err != nil {
					t.Fatalf("%s %s: %v", op, status, err)
				}
				if got := filterMatches(t, patterns, rec); got != pending {
					t.Errorf("%s of a %s request (was %q): filter passes it = %v, PendingRequest says pending = %v", op, status, oldStatus, got, pending)
				} else if got {
					matched++
				}
			}
		}
	}
	if matched == 0 {
		t.Error("the filter passes nothing")
	}
}

// streamRecord builds a stream record as DynamoDB sends it for a request
// item: string attributes as the store writes them.
func streamRecord(op events.DynamoDBOperationType, status, oldStatus store.Status) events.DynamoDBEventRecord {
	image := func(st store.Status) map[string]events.DynamoDBAttributeValue {
		return map[string]events.DynamoDBAttributeValue{
			dynamo.AttrRequestID:    events.NewStringAttribute("r-1"),
			dynamo.AttrConnectionID: events.NewStringAttribute("c-1"),
			dynamo.AttrAction:       events.NewStringAttribute("report"),
			dynamo.AttrStatus:       events.NewStringAttribute(string(st)),
			dynamo.AttrProgress:     events.NewNumberAttribute("0"),
			dynamo.AttrAttempts:     events.NewNumberAttribute("0"),
		}
	}
	rec := events.DynamoDBEventRecord{
		EventID:     "1",
		EventName:   string(op),
		EventSource: "aws:dynamodb",
		Change: events.DynamoDBStreamRecord{
			Keys:           map[string]events.DynamoDBAttributeValue{dynamo.AttrRequestID: events.NewStringAttribute("r-1")},
			SequenceNumber: "100",
			StreamViewType: "NEW_AND_OLD_IMAGES",
		},
	}
	if op != events.DynamoDBOperationTypeRemove {
		rec.Change.NewImage = image(status)
	}
	if oldStatus != "" && op != events.DynamoDBOperationTypeInsert {
		rec.Change.OldImage = image(oldStatus)
	}
	return rec
}

func filterPatterns(t testing.TB, ev object) []object {
	t.Helper()
	fc, _ := ev["FilterCriteria"].(object)
	filters, _ := fc["Filters"].([]any)
	if len(filters) == 0 {
		t.Fatal("the stream event has no FilterCriteria: every progress write would invoke the processor")
	}
	var out []object
	for _, f := range filters {
		var p object
		if err := json.Unmarshal([]byte(fmt.Sprint(f.(object)["Pattern"])), &p); err != nil {
			t.Fatalf("filter pattern: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// filterMatches applies Lambda event filtering (any filter matching lets
// the record through) to rec as Lambda sees it, in JSON.
func filterMatches(t testing.TB, patterns []object, rec events.DynamoDBEventRecord) bool {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var doc object
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range patterns {
		if matchPattern(t, p, doc) {
			return true
		}
	}
	return false
}

// matchPattern implements the part of the event-pattern syntax the template
// uses: nested objects and lists of exact values. Any other operator
// (prefix, exists, numeric, ...) fails the test rather than being guessed.
func matchPattern(t testing.TB, pattern object, doc object) bool {
	t.Helper()
	for k, want := range pattern {
		got, present := doc[k]
		switch want := want.(type) {
		case object:
			sub, ok := got.(object)
			if !present || !ok || !matchPattern(t, want, sub) {
				return false
			}
		case []any:
			if !present {
				return false
			}
			hit := false
			for _, w := range want {
				if _, isObj := w.(object); isObj {
					t.Fatalf("filter operator %v is not supported by this test", w)
				}
				if w == got {
					hit = true
				}
			}
			if !hit {
				return false
			}
		default:
			t.Fatalf("filter pattern value %v for %s must be a list or an object", want, k)
		}
	}
	return true
}

// unsetOnPurpose are the variables awslambda.ConfigFromEnv reads that the
// template deliberately leaves out: it names the tables itself, and the
// endpoints are for local testing (DynamoDB) or come from each connection's
// $connect event (@connections).
var unsetOnPurpose = map[string]bool{
	awslambda.EnvTablePrefix:      true,
	awslambda.EnvDynamoDBEndpoint: true,
	awslambda.EnvManagementURL:    true,
	// Unset, the manager keeps its default @connections budget.
	awslambda.EnvPacingRate:  true,
	awslambda.EnvPacingBurst: true,
	// Unset, each function instance keys request ids with a key of its
	// own: a resubmission that reaches another instance is a new request.
	// A deployment that wants them shared sets one secret on every
	// function.
	awslambda.EnvRequestIDKey: true,
}

// Every variable the code reads is set on every function, or is on the
// short list the template leaves out on purpose: a setting added to
// ConfigFromEnv cannot be forgotten here.
func TestEveryVariableTheCodeReadsIsDecided(t *testing.T) {
	tpl := loadTemplate(t, templateFile)
	s := mustStack(t, tpl, withJWT)
	for _, fn := range functions(t, s) {
		env := s.functionEnv(t, fn)
		for _, name := range awslambda.EnvVars() {
			_, set := env[name]
			switch {
			case !set && !unsetOnPurpose[name]:
				t.Errorf("%s does not set %s, which awslambda.ConfigFromEnv reads", fn, name)
			case set && unsetOnPurpose[name]:
				t.Errorf("%s sets %s, which the template means to leave unset", fn, name)
			}
		}
	}
}
