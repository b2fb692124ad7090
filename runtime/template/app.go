package template

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// App is what a template deploys, resolved for local use.
type App struct {
	StackName, Region, AccountID, APIID string

	// API is the template's ProtocolType WEBSOCKET API; nil if it has none.
	API *API
	// Functions are the Lambda functions by logical ID.
	Functions map[string]*Function
	// Tables are the DynamoDB tables by logical ID.
	Tables map[string]*Table
	// StreamSources are the DynamoDB Streams event sources.
	StreamSources []*StreamSource
	// Schedules are the schedule rules that invoke functions.
	Schedules []*Schedule
	// Outputs are the template's Outputs, resolved; LocalOutputs gives
	// them with the local endpoint.
	Outputs []Output
	// Unsupported lists, one line each, what the template declares that
	// the local runtime does not emulate.
	Unsupported []string

	dir   string
	stack *stack
	names map[string]string // function physical name → logical ID
	// served is the logical ID of the WebSocket API the runtime serves:
	// the first by logical ID.
	served string
}

// API is a WebSocket API.
type API struct {
	LogicalID                string
	Name                     string
	RouteSelectionExpression string
	// Stage is the StageName of its AWS::ApiGatewayV2::Stage; empty when
	// the template declares none.
	Stage  string
	Routes []*Route
}

// Route is one route of the API with its Lambda proxy integration.
type Route struct {
	LogicalID string
	Key       string
	// Function is the logical ID of the function the integration invokes.
	Function string
	// Authorizer is the route's REQUEST authorizer (only $connect may
	// have one); nil without.
	Authorizer *Authorizer
	// IAM is set when the route's AuthorizationType is AWS_IAM (only
	// $connect's is checked): the upgrade request must be SigV4-signed.
	IAM bool
	// TwoWay is set when the route has a route response: the function's
	// answer is sent back to the client.
	TwoWay bool
	// IntegrationTimeout is how long API Gateway waits for the function's
	// answer: the integration's TimeoutInMillis (SAM's route
	// IntegrationTimeout), zero when unset, meaning API Gateway's default
	// DefaultIntegrationTimeout.
	IntegrationTimeout time.Duration
}

// The integration timeouts API Gateway accepts on a WebSocket API, and its
// default (AWS::ApiGatewayV2::Integration TimeoutInMillis).
const (
	MinIntegrationTimeout     = 50 * time.Millisecond
	MaxIntegrationTimeout     = 29 * time.Second
	DefaultIntegrationTimeout = 29 * time.Second
)

// Authorizer is a REQUEST Lambda authorizer.
type Authorizer struct {
	LogicalID string
	Name      string
	Function  string
	// IdentitySources are its identity sources, e.g.
	// "route.request.header.Authorization" or
	// "route.request.querystring.token"; when one is missing from the
	// request, API Gateway answers 401 without calling the function.
	IdentitySources []string
}

// Function is a Lambda function.
type Function struct {
	LogicalID string
	// Name is AWS_LAMBDA_FUNCTION_NAME.
	Name    string
	Runtime string
	Handler string
	// CodeDir is the absolute folder of the function's code (CodeUri).
	CodeDir string
	// Timeout is the function's Timeout (3 s when unset, as on Lambda).
	Timeout time.Duration
	// MemoryMB is MemorySize (128 when unset).
	MemoryMB int
	// Environment is Environment.Variables, resolved.
	Environment map[string]string
	// Architectures as declared (default x86_64); the local runtime runs
	// the host's.
	Architectures []string
	// Build is how `sam build` makes the function's code, from its
	// Metadata.
	Build Build
}

// Table is a DynamoDB table.
type Table struct {
	LogicalID string
	Name      string
	// StreamViewType is the StreamSpecification's view type, empty when
	// the table has no stream.
	StreamViewType string
	// Properties are the resource's resolved properties.
	Properties map[string]any
}

// StreamSource is a DynamoDB Streams event source mapping.
type StreamSource struct {
	// Name identifies it: "Function.Event" for SAM events, the logical
	// ID of an AWS::Lambda::EventSourceMapping.
	Name     string
	Function string
	Table    string
	// BatchSize is at most how many records one invocation gets (100
	// when unset, as on Lambda).
	BatchSize int
	// StartingPosition is LATEST or TRIM_HORIZON.
	StartingPosition string
	// Filters are the FilterCriteria patterns (JSON text).
	Filters []string
	// ReportBatchItemFailures is set when FunctionResponseTypes has
	// ReportBatchItemFailures.
	ReportBatchItemFailures bool
	// MaximumRetryAttempts is how often a failing batch is retried; -1
	// (the default) means until the records expire.
	MaximumRetryAttempts       int
	BisectBatchOnFunctionError bool
	Enabled                    bool
}

// Schedule is a rule that invokes a function on a schedule.
type Schedule struct {
	Name     string
	Function string
	// Expression is rate(...) or cron(...).
	Expression string
	// Input is the event's JSON text when the rule sets one; empty means
	// the scheduled event EventBridge sends.
	Input   string
	Enabled bool
}

func (a *App) unsupported(format string, args ...any) {
	a.Unsupported = append(a.Unsupported, fmt.Sprintf(format, args...))
}

// handled lists, per resource type, the properties the local runtime
// reads or that change nothing locally (names, descriptions, tags, IAM,
// which has its own line). Any other property set gets a "not emulated"
// line, so nothing is ignored silently.
var handled = map[string][]string{
	"AWS::Serverless::Function": {"CodeUri", "Handler", "Runtime", "Timeout", "MemorySize", "Environment", "Architectures",
		"Events", "FunctionName", "Description", "Tags", "Policies", "Role", "PackageType", "InlineCode", "Layers", "VpcConfig",
		"FileSystemConfigs", "SnapStart", "AutoPublishAlias", "PermissionsBoundary", "Tracing", "LoggingConfig", "Metadata"},
	"AWS::Lambda::Function": {"Code", "Handler", "Runtime", "Timeout", "MemorySize", "Environment", "Architectures",
		"FunctionName", "Description", "Tags", "Role", "PackageType", "Layers", "VpcConfig", "FileSystemConfigs", "SnapStart",
		"TracingConfig", "LoggingConfig"},
	"AWS::ApiGatewayV2::Api": {"Name", "ProtocolType", "RouteSelectionExpression", "Description", "Tags", "Body",
		"ApiKeySelectionExpression", "Version", "DisableExecuteApiEndpoint"},
	"AWS::ApiGatewayV2::Route": {"ApiId", "RouteKey", "Target", "AuthorizationType", "AuthorizerId", "OperationName",
		"ApiKeyRequired", "RouteResponseSelectionExpression"},
	"AWS::ApiGatewayV2::Integration": {"ApiId", "IntegrationType", "IntegrationUri", "IntegrationMethod", "Description",
		"PayloadFormatVersion", "CredentialsArn", "RequestTemplates", "TemplateSelectionExpression", "PassthroughBehavior",
		"TimeoutInMillis"},
	"AWS::ApiGatewayV2::Authorizer": {"ApiId", "AuthorizerType", "AuthorizerUri", "IdentitySource", "Name",
		"AuthorizerResultTtlInSeconds", "AuthorizerCredentialsArn"},
	"AWS::ApiGatewayV2::Stage": {"ApiId", "StageName", "DeploymentId", "Description", "Tags", "AutoDeploy",
		"DefaultRouteSettings", "StageVariables"},
}

// notEmulatedProps adds a line for each property of id the runtime does
// not read.
func (a *App) notEmulatedProps(id string, p map[string]any) {
	known, ok := handled[a.stack.resources[id].Type]
	if !ok {
		return
	}
	var extra []string
	for k := range p {
		found := false
		for _, h := range known {
			if h == k {
				found = true
				break
			}
		}
		if !found {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		a.unsupported("%s: %s is not emulated", id, k)
	}
}

// physicalName is what Ref returns for a resource.
func (a *App) physicalName(id string) string {
	r := a.stack.resources[id]
	switch r.Type {
	case "AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable":
		if n := a.nameProp(id, "TableName"); n != "" {
			return n
		}
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		if n := a.nameProp(id, "FunctionName"); n != "" {
			return n
		}
	case "AWS::ApiGatewayV2::Api":
		return a.apiID(id)
	case "AWS::ApiGatewayV2::DomainName":
		if n := a.nameProp(id, "DomainName"); n != "" {
			return n
		}
		return id
	case "AWS::ApiGatewayV2::Stage":
		// Ref of a stage is its name (wss://${Api}.execute-api.../${Stage}).
		if n := a.nameProp(id, "StageName"); n != "" {
			return n
		}
		return id
	default:
		return id
	}
	return a.StackName + "-" + id
}

// apiID is what Ref of an AWS::ApiGatewayV2::Api gives: APIID for the
// WebSocket API the runtime serves, "{APIID}-{LogicalID}" for any other,
// so what is declared on another API is told apart from the served one's.
func (a *App) apiID(id string) string {
	if a.served == "" || id == a.served {
		return a.APIID
	}
	return a.APIID + "-" + id
}

// nameProp resolves a name property on its own, so a Ref to a table does
// not resolve (and depend on) the rest of the table.
func (a *App) nameProp(id, prop string) string {
	v, ok := a.stack.resources[id].Properties[prop]
	if !ok {
		return ""
	}
	r, err := a.stack.resolve(v, id, "Properties."+prop)
	if err != nil {
		return ""
	}
	s, _ := scalarString(r)
	return s
}

func (a *App) attribute(id, attr string) (string, error) {
	r := a.stack.resources[id]
	name := a.physicalName(id)
	switch {
	case (r.Type == "AWS::DynamoDB::Table" || r.Type == "AWS::Serverless::SimpleTable") && attr == "Arn":
		return a.arn("dynamodb", "table/"+name), nil
	case r.Type == "AWS::DynamoDB::Table" && attr == "StreamArn":
		return a.arn("dynamodb", "table/"+name+"/stream/local"), nil
	case (r.Type == "AWS::Serverless::Function" || r.Type == "AWS::Lambda::Function") && attr == "Arn":
		return a.arn("lambda", "function:"+name), nil
	case r.Type == "AWS::ApiGatewayV2::Api" && attr == "ApiId":
		return a.apiID(id), nil
	case r.Type == "AWS::ApiGatewayV2::Api" && attr == "ApiEndpoint":
		return "wss://" + a.hostOf(a.apiID(id)), nil
	case attr == "Arn":
		// Roles, queues, topics: nothing local reads their ARNs, but
		// templates pass them around.
		return a.arn("local", id), nil
	}
	return id + "." + attr, nil
}

func (a *App) arn(service, rest string) string {
	return "arn:aws:" + service + ":" + a.Region + ":" + a.AccountID + ":" + rest
}

// props resolves a resource's properties.
func (a *App) props(id string) (map[string]any, error) {
	v, err := a.stack.resolve(a.stack.resources[id].Properties, id, "Properties")
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func (a *App) build() error {
	a.Functions = map[string]*Function{}
	a.Tables = map[string]*Table{}
	a.names = map[string]string{}
	ids := make([]string, 0, len(a.stack.resources))
	for id := range a.stack.resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	byType := map[string][]string{}
	for _, id := range ids {
		t := a.stack.resources[id].Type
		byType[t] = append(byType[t], id)
	}
	for _, id := range byType["AWS::ApiGatewayV2::Api"] {
		if a.nameProp(id, "ProtocolType") == "WEBSOCKET" {
			a.served = id
			break
		}
	}
	iam := false
	for _, id := range ids {
		t := a.stack.resources[id].Type
		switch t {
		case "AWS::Serverless::Function", "AWS::Lambda::Function":
			if err := a.function(id); err != nil {
				return err
			}
		case "AWS::DynamoDB::Table":
			if err := a.table(id); err != nil {
				return err
			}
		case "AWS::Serverless::SimpleTable":
			if err := a.simpleTable(id); err != nil {
				return err
			}
		case "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Integration",
			"AWS::ApiGatewayV2::Authorizer", "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::RouteResponse",
			"AWS::ApiGatewayV2::Deployment", "AWS::Lambda::EventSourceMapping", "AWS::Events::Rule":
			// Read below, once every function is known.
		case "AWS::Lambda::Permission", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			iam = true
		case "AWS::Logs::LogGroup":
			// Logs go to the runtime's output.
		case "AWS::ApiGatewayV2::DomainName":
			if a.stack.resources[id].generatedBy == "" {
				a.unsupported("%s (%s) is not emulated", id, t)
			}
			// A WebSocketApi's Domain has its own line.
		default:
			a.unsupported("%s (%s) is not emulated", id, t)
		}
	}
	if iam {
		a.unsupported("IAM roles, policies and Lambda permissions are not enforced: every function may call everything")
	}
	for _, id := range byType["AWS::Serverless::Function"] {
		if err := a.samEvents(id); err != nil {
			return err
		}
	}
	for _, id := range byType["AWS::ApiGatewayV2::Api"] {
		if err := a.api(id, byType); err != nil {
			return err
		}
	}
	for _, id := range byType["AWS::Lambda::EventSourceMapping"] {
		if err := a.eventSourceMapping(id); err != nil {
			return err
		}
	}
	for _, id := range byType["AWS::Events::Rule"] {
		if err := a.rule(id); err != nil {
			return err
		}
	}
	return nil
}

func str(m map[string]any, key string) string {
	s, _ := scalarString(m[key])
	return s
}

// num reads an integer property; field is the path of m for errors.
func num(m map[string]any, res, field, key string, def int) (int, error) {
	v, ok := m[key]
	if !ok {
		return def, nil
	}
	s, err := scalarString(v)
	if err != nil {
		return 0, errorf(res, field+"."+key, "%v", err)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errorf(res, field+"."+key, "want an integer, got %q", s)
	}
	return n, nil
}

func (a *App) function(id string) error {
	p, err := a.props(id)
	if err != nil {
		return err
	}
	a.notEmulatedProps(id, p)
	f := &Function{LogicalID: id, Name: a.physicalName(id), Runtime: str(p, "Runtime"), Handler: str(p, "Handler")}
	a.names[f.Name] = id
	if pt := str(p, "PackageType"); pt == "Image" {
		a.unsupported("%s: PackageType Image is not emulated (only zip functions run locally)", id)
		return nil
	}
	code := ""
	switch c := p["CodeUri"].(type) {
	case string:
		code = c
	case nil:
		if cs, ok := p["Code"].(string); ok { // a template before `aws cloudformation package`
			code = cs
		} else if _, inline := p["InlineCode"]; inline {
			a.unsupported("%s: InlineCode is not emulated; point CodeUri at a folder", id)
			return nil
		} else if _, has := p["Code"]; has {
			a.unsupported("%s: Code in S3 or inline is not emulated; point CodeUri at a local folder", id)
			return nil
		}
	default:
		a.unsupported("%s: CodeUri in S3 is not emulated; point CodeUri at a local folder", id)
		return nil
	}
	if code == "" {
		return errorf(id, "Properties.CodeUri", "missing")
	}
	if strings.HasPrefix(code, "s3://") {
		a.unsupported("%s: CodeUri %s is in S3; point it at a local folder", id, code)
		return nil
	}
	if !filepath.IsAbs(code) {
		code = filepath.Join(a.dir, code)
	}
	f.CodeDir = filepath.Clean(code)
	if f.Build, err = a.buildMetadata(id, f.CodeDir); err != nil {
		return err
	}
	if f.Runtime == "" {
		return errorf(id, "Properties.Runtime", "missing")
	}
	if f.Handler == "" && !strings.HasPrefix(f.Runtime, "provided") {
		return errorf(id, "Properties.Handler", "missing")
	}
	timeout, err := num(p, id, "Properties", "Timeout", 3)
	if err != nil {
		return err
	}
	if timeout < 1 || timeout > 900 {
		return errorf(id, "Properties.Timeout", "%d s is outside Lambda's 1..900", timeout)
	}
	f.Timeout = time.Duration(timeout) * time.Second
	if f.MemoryMB, err = num(p, id, "Properties", "MemorySize", 128); err != nil {
		return err
	}
	f.Environment = map[string]string{}
	if env, ok := p["Environment"].(map[string]any); ok {
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range vars {
			s, err := scalarString(v)
			if err != nil {
				return errorf(id, "Properties.Environment.Variables."+k, "%v", err)
			}
			f.Environment[k] = s
		}
	}
	if archs, ok := p["Architectures"].([]any); ok {
		for _, x := range archs {
			s, _ := scalarString(x)
			f.Architectures = append(f.Architectures, s)
		}
	}
	for _, k := range []string{"Layers", "VpcConfig", "FileSystemConfigs", "SnapStart"} {
		if _, ok := p[k]; ok {
			a.unsupported("%s: %s is not emulated", id, k)
		}
	}
	a.Functions[id] = f
	return nil
}

// samEvents reads a SAM function's Events, once every table is known.
func (a *App) samEvents(id string) error {
	if a.Functions[id] == nil {
		return nil
	}
	p, err := a.props(id)
	if err != nil {
		return err
	}
	evs, ok := p["Events"].(map[string]any)
	if !ok {
		return nil
	}
	names := make([]string, 0, len(evs))
	for n := range evs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := a.samEvent(id, n, evs[n]); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) samEvent(fn, name string, raw any) error {
	field := "Properties.Events." + name
	ev, ok := raw.(map[string]any)
	if !ok {
		return errorf(fn, field, "want an object")
	}
	props, _ := ev["Properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	switch typ := str(ev, "Type"); typ {
	case "DynamoDB":
		src, err := a.streamSource(fn+"."+name, fn, field, props, str(props, "Stream"))
		if err != nil {
			return err
		}
		if src != nil {
			a.StreamSources = append(a.StreamSources, src)
		}
	case "Schedule", "ScheduleV2":
		expr := str(props, "Schedule")
		if typ == "ScheduleV2" {
			expr = str(props, "ScheduleExpression")
		}
		if expr == "" {
			return errorf(fn, field+".Properties.Schedule", "missing")
		}
		enabled := true
		if b, ok := props["Enabled"].(bool); ok {
			enabled = b
		}
		if st := str(props, "State"); st == "DISABLED" {
			enabled = false
		}
		input := ""
		if in, ok := props["Input"]; ok {
			input, _ = scalarString(in)
		}
		a.Schedules = append(a.Schedules, &Schedule{Name: fn + "." + name, Function: fn, Expression: expr, Input: input, Enabled: enabled})
	default:
		if !samEventTypes[typ] {
			hint := ""
			if strings.Contains(strings.ToLower(typ), "websocket") {
				hint = ": a WebSocket API's routes are the Routes of its AWS::Serverless::WebSocketApi"
			}
			return errorf(fn, field+".Type", "invalid event type %q (SAM refuses it)%s", typ, hint)
		}
		a.unsupported("%s: event %s of type %s is not emulated", fn, name, typ)
	}
	return nil
}

// samEventTypes are the event source types of AWS::Serverless::Function;
// SAM refuses any other.
var samEventTypes = map[string]bool{
	"AlexaSkill": true, "Api": true, "CloudWatchEvent": true, "CloudWatchLogs": true, "Cognito": true,
	"DocumentDB": true, "DynamoDB": true, "EventBridgeRule": true, "HttpApi": true, "IoTRule": true,
	"Kinesis": true, "MQ": true, "MSK": true, "S3": true, "SNS": true, "SQS": true, "Schedule": true,
	"ScheduleV2": true, "SelfManagedKafka": true,
}

func (a *App) streamSource(name, fn, field string, p map[string]any, arn string) (*StreamSource, error) {
	table := a.tableFromStreamARN(arn)
	if table == "" {
		a.unsupported("%s: event source %q is not a DynamoDB stream of this template; not emulated", name, arn)
		return nil, nil
	}
	src := &StreamSource{Name: name, Function: fn, Table: table, StartingPosition: str(p, "StartingPosition"), MaximumRetryAttempts: -1, Enabled: true}
	var err error
	if src.BatchSize, err = num(p, fn, field, "BatchSize", 100); err != nil {
		return nil, err
	}
	if src.BatchSize < 1 || src.BatchSize > 10000 {
		return nil, errorf(fn, field+".BatchSize", "%d is outside 1..10000", src.BatchSize)
	}
	if v, ok := p["MaximumRetryAttempts"]; ok {
		s, _ := scalarString(v)
		if src.MaximumRetryAttempts, err = strconv.Atoi(s); err != nil {
			return nil, errorf(fn, field+".MaximumRetryAttempts", "want an integer, got %q", s)
		}
	}
	if b, ok := p["BisectBatchOnFunctionError"].(bool); ok {
		src.BisectBatchOnFunctionError = b
	}
	if b, ok := p["Enabled"].(bool); ok {
		src.Enabled = b
	}
	if types, ok := p["FunctionResponseTypes"].([]any); ok {
		for _, t := range types {
			if s, _ := scalarString(t); s == "ReportBatchItemFailures" {
				src.ReportBatchItemFailures = true
			}
		}
	}
	if fc, ok := p["FilterCriteria"].(map[string]any); ok {
		filters, _ := fc["Filters"].([]any)
		for i, f := range filters {
			fm, _ := f.(map[string]any)
			pat := str(fm, "Pattern")
			var probe map[string]any
			if err := json.Unmarshal([]byte(pat), &probe); err != nil {
				return nil, errorf(fn, fmt.Sprintf("%s.FilterCriteria.Filters[%d].Pattern", field, i), "not a JSON object: %v", err)
			}
			src.Filters = append(src.Filters, pat)
		}
	}
	if w, _ := num(p, fn, field, "MaximumBatchingWindowInSeconds", 0); w > 0 {
		a.unsupported("%s: MaximumBatchingWindowInSeconds is not emulated: records are delivered as soon as they are written", name)
	}
	for _, k := range []string{"DestinationConfig", "TumblingWindowInSeconds", "ParallelizationFactor", "MaximumRecordAgeInSeconds"} {
		if _, ok := p[k]; ok {
			a.unsupported("%s: %s is not emulated", name, k)
		}
	}
	return src, nil
}

// tableFromStreamARN returns the logical ID of the table whose stream
// arn names, or "".
func (a *App) tableFromStreamARN(arn string) string {
	_, rest, ok := strings.Cut(arn, ":table/")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "/")
	for id, t := range a.Tables {
		if t.Name == name {
			return id
		}
	}
	return ""
}

// functionFrom returns the logical ID of the function a name, an ARN or
// an integration URI (arn:...:lambda:path/2015-03-31/functions/ARN/invocations) names.
func (a *App) functionFrom(ref string) string {
	if i := strings.LastIndex(ref, ":function:"); i >= 0 {
		ref = ref[i+len(":function:"):]
		if j := strings.IndexAny(ref, "/:"); j >= 0 {
			ref = ref[:j]
		}
	}
	if id, ok := a.names[ref]; ok {
		return id
	}
	if _, ok := a.Functions[ref]; ok {
		return ref
	}
	return ""
}

func (a *App) table(id string) error {
	p, err := a.props(id)
	if err != nil {
		return err
	}
	t := &Table{LogicalID: id, Name: a.physicalName(id), Properties: p}
	if ss, ok := p["StreamSpecification"].(map[string]any); ok {
		t.StreamViewType = str(ss, "StreamViewType")
	}
	if _, ok := p["KeySchema"].([]any); !ok {
		return errorf(id, "Properties.KeySchema", "missing")
	}
	if _, ok := p["TimeToLiveSpecification"]; ok {
		a.unsupported("%s: TimeToLiveSpecification is not emulated (expired items are not deleted)", id)
	}
	for _, k := range []string{"KinesisStreamSpecification", "SSESpecification", "PointInTimeRecoverySpecification", "ContributorInsightsSpecification", "ImportSourceSpecification"} {
		if _, ok := p[k]; ok {
			a.unsupported("%s: %s is not emulated", id, k)
		}
	}
	a.Tables[id] = t
	return nil
}

func (a *App) eventSourceMapping(id string) error {
	p, err := a.props(id)
	if err != nil {
		return err
	}
	fn := a.functionFrom(str(p, "FunctionName"))
	if fn == "" {
		return errorf(id, "Properties.FunctionName", "%q is not a function of this template", str(p, "FunctionName"))
	}
	src, err := a.streamSource(id, fn, "Properties", p, str(p, "EventSourceArn"))
	if err != nil {
		return err
	}
	if src != nil {
		a.StreamSources = append(a.StreamSources, src)
	}
	return nil
}

func (a *App) rule(id string) error {
	p, err := a.props(id)
	if err != nil {
		return err
	}
	expr := str(p, "ScheduleExpression")
	if expr == "" {
		a.unsupported("%s: event pattern rules are not emulated (only schedules)", id)
		return nil
	}
	enabled := str(p, "State") != "DISABLED"
	targets, _ := p["Targets"].([]any)
	for i, t := range targets {
		tm, _ := t.(map[string]any)
		fn := a.functionFrom(str(tm, "Arn"))
		if fn == "" {
			a.unsupported("%s: target %d (%s) is not a function of this template; not emulated", id, i, str(tm, "Arn"))
			continue
		}
		a.Schedules = append(a.Schedules, &Schedule{Name: id, Function: fn, Expression: expr, Input: str(tm, "Input"), Enabled: enabled})
	}
	return nil
}

func (a *App) api(id string, byType map[string][]string) error {
	p, err := a.props(id)
	if err != nil {
		return err
	}
	a.notEmulatedProps(id, p)
	if pt := str(p, "ProtocolType"); pt != "WEBSOCKET" {
		a.unsupported("%s: ProtocolType %s APIs are not emulated (only WEBSOCKET)", id, pt)
		return nil
	}
	if a.API != nil {
		a.unsupported("%s: a second WebSocket API is not served (only %s)", id, a.API.LogicalID)
		return nil
	}
	if _, ok := p["Body"]; ok {
		a.unsupported("%s: an API imported from Body is not read; declare its routes as resources", id)
	}
	if str(p, "ApiKeySelectionExpression") != "" {
		a.unsupported("%s: API keys are not checked", id)
	}
	if b, _ := p["DisableExecuteApiEndpoint"].(bool); b {
		a.unsupported("%s: DisableExecuteApiEndpoint is not emulated: the local endpoint serves the API", id)
	}
	api := &API{LogicalID: id, Name: str(p, "Name"), RouteSelectionExpression: str(p, "RouteSelectionExpression")}
	if api.RouteSelectionExpression == "" {
		return errorf(id, "Properties.RouteSelectionExpression", "missing (a WebSocket API needs one)")
	}
	belongs := func(res string, p map[string]any) (bool, error) {
		v := str(p, "ApiId")
		if v == "" {
			return false, errorf(res, "Properties.ApiId", "missing")
		}
		return v == a.apiID(id), nil
	}
	integrations := map[string]map[string]any{}
	for _, iid := range byType["AWS::ApiGatewayV2::Integration"] {
		ip, err := a.props(iid)
		if err != nil {
			return err
		}
		if ok, err := belongs(iid, ip); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		a.notEmulatedProps(iid, ip)
		integrations[iid] = ip
	}
	authorizers := map[string]*Authorizer{}
	for _, aid := range byType["AWS::ApiGatewayV2::Authorizer"] {
		ap, err := a.props(aid)
		if err != nil {
			return err
		}
		if ok, err := belongs(aid, ap); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		a.notEmulatedProps(aid, ap)
		if t := str(ap, "AuthorizerType"); t != "REQUEST" {
			a.unsupported("%s: AuthorizerType %s is not emulated (only REQUEST)", aid, t)
			continue
		}
		fn := a.functionFrom(str(ap, "AuthorizerUri"))
		if fn == "" {
			return errorf(aid, "Properties.AuthorizerUri", "%q does not invoke a function of this template", str(ap, "AuthorizerUri"))
		}
		au := &Authorizer{LogicalID: aid, Name: str(ap, "Name"), Function: fn}
		if ttl, _ := num(ap, aid, "Properties", "AuthorizerResultTtlInSeconds", 0); ttl > 0 {
			a.unsupported("%s: AuthorizerResultTtlInSeconds is not emulated: the authorizer runs on every $connect", aid)
		}
		if srcs, ok := ap["IdentitySource"].([]any); ok {
			for _, s := range srcs {
				ss, _ := scalarString(s)
				au.IdentitySources = append(au.IdentitySources, ss)
			}
		}
		authorizers[aid] = au
	}
	routes := map[string]*Route{}
	for _, rid := range byType["AWS::ApiGatewayV2::Route"] {
		rp, err := a.props(rid)
		if err != nil {
			return err
		}
		if ok, err := belongs(rid, rp); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		a.notEmulatedProps(rid, rp)
		r := &Route{LogicalID: rid, Key: str(rp, "RouteKey")}
		if r.Key == "" {
			return errorf(rid, "Properties.RouteKey", "missing")
		}
		target := str(rp, "Target")
		iid, ok := strings.CutPrefix(target, "integrations/")
		if !ok {
			a.unsupported("%s: route %s has no integration target; not served", rid, r.Key)
			continue
		}
		ip, ok := integrations[iid]
		if !ok {
			return errorf(rid, "Properties.Target", "%q is not an integration of %s", target, id)
		}
		switch t := str(ip, "IntegrationType"); t {
		case "AWS_PROXY":
		case "AWS":
			// A Lambda integration with request templates: the event would
			// be what a VTL template renders, which is not evaluated here.
			a.unsupported("%s: IntegrationType AWS (request templates, TemplateSelectionExpression, integration responses) is not emulated; route %s not served: use AWS_PROXY", iid, r.Key)
			continue
		default:
			a.unsupported("%s: IntegrationType %s is not emulated (only AWS_PROXY); route %s not served", iid, t, r.Key)
			continue
		}
		if v, ok := ip["TimeoutInMillis"]; ok {
			if r.IntegrationTimeout, err = integrationTimeout(iid, "Properties.TimeoutInMillis", v); err != nil {
				return err
			}
		}
		if r.Function = a.functionFrom(str(ip, "IntegrationUri")); r.Function == "" {
			return errorf(iid, "Properties.IntegrationUri", "%q does not invoke a function of this template", str(ip, "IntegrationUri"))
		}
		if a.Functions[r.Function] == nil {
			a.unsupported("route %s: function %s cannot run locally; route not served", r.Key, r.Function)
			continue
		}
		switch at := str(rp, "AuthorizationType"); at {
		case "", "NONE":
		case "CUSTOM":
			au := authorizers[str(rp, "AuthorizerId")]
			if au == nil {
				return errorf(rid, "Properties.AuthorizerId", "%q is not a REQUEST authorizer of %s", str(rp, "AuthorizerId"), id)
			}
			if r.Key != "$connect" {
				return errorf(rid, "Properties.AuthorizationType", "only $connect may have an authorizer on a WebSocket API")
			}
			r.Authorizer = au
		case "AWS_IAM":
			if r.Key != "$connect" {
				a.unsupported("%s: AuthorizationType AWS_IAM is not checked on route %s (API Gateway authorizes only $connect)", rid, r.Key)
				break
			}
			r.IAM = true
			a.unsupported("%s: AuthorizationType AWS_IAM: the SigV4 signature of the upgrade is checked (any access key, the local secret); IAM policies are not evaluated", rid)
		default:
			a.unsupported("%s: AuthorizationType %s is not checked", rid, at)
		}
		if b, _ := rp["ApiKeyRequired"].(bool); b {
			a.unsupported("%s: ApiKeyRequired is not checked", rid)
		}
		if str(rp, "RouteResponseSelectionExpression") != "" {
			r.TwoWay = true
		}
		routes[rid] = r
		api.Routes = append(api.Routes, r)
	}
	for _, rrid := range byType["AWS::ApiGatewayV2::RouteResponse"] {
		rp, err := a.props(rrid)
		if err != nil {
			return err
		}
		if ok, err := belongs(rrid, rp); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		if r := routes[str(rp, "RouteId")]; r != nil {
			r.TwoWay = true
		}
	}
	for _, sid := range byType["AWS::ApiGatewayV2::Stage"] {
		sp, err := a.props(sid)
		if err != nil {
			return err
		}
		if ok, err := belongs(sid, sp); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		a.notEmulatedProps(sid, sp)
		if api.Stage != "" {
			a.unsupported("%s: only one stage is served (%s)", sid, api.Stage)
			continue
		}
		if api.Stage = str(sp, "StageName"); api.Stage == "" {
			return errorf(sid, "Properties.StageName", "missing")
		}
		if _, ok := sp["DefaultRouteSettings"]; ok {
			a.unsupported("%s: throttling and logging settings are not applied", sid)
		}
		if vars, ok := sp["StageVariables"].(map[string]any); ok && len(vars) > 0 {
			a.unsupported("%s: stage variables are not passed to events", sid)
		}
	}
	sort.Slice(api.Routes, func(i, j int) bool { return api.Routes[i].Key < api.Routes[j].Key })
	a.API = api
	return nil
}

// integrationTimeout reads a TimeoutInMillis (or SAM's IntegrationTimeout)
// v, found at res's field: an *Error unless it is an integer within the
// 50..29,000 ms API Gateway accepts for a WebSocket API (it refuses the
// integration at deploy).
func integrationTimeout(res, field string, v any) (time.Duration, error) {
	s, err := scalarString(v)
	if err != nil {
		return 0, errorf(res, field, "%v", err)
	}
	ms, err := strconv.Atoi(s)
	if err != nil {
		return 0, errorf(res, field, "want an integer number of milliseconds, got %q", s)
	}
	d := time.Duration(ms) * time.Millisecond
	if d < MinIntegrationTimeout || d > MaxIntegrationTimeout {
		return 0, errorf(res, field, "%d ms is outside the %d..%d ms API Gateway accepts for a WebSocket API",
			ms, MinIntegrationTimeout.Milliseconds(), MaxIntegrationTimeout.Milliseconds())
	}
	return d, nil
}
