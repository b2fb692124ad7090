package template

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// oneFunction starts a template with one function, Fn.
const oneFunction = `Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn/, Handler: app.h, Runtime: nodejs22.x}
`

// fixture is the text of testdata/websocketapi/name.
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "websocketapi", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseSAM(t *testing.T, text string, opts Options) *App {
	t.Helper()
	app, err := Parse([]byte(text), t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func routeFunctions(api *API) map[string]string {
	out := map[string]string{}
	for _, r := range api.Routes {
		out[r.Key] = r.Function
	}
	return out
}

func TestWebSocketAPIDefaults(t *testing.T) {
	app := parseSAM(t, fixture(t, "chat.yaml"), Options{Region: "eu-west-1"})
	api := app.API
	if api == nil {
		t.Fatal("no API")
	}
	if api.LogicalID != "ChatApi" || api.Name != "ChatApi" || api.Stage != "default" || api.RouteSelectionExpression != "$request.body.action" {
		t.Errorf("api = %+v", api)
	}
	want := map[string]string{"$connect": "OnConnect", "$disconnect": "OnDisconnect", "sendMessage": "OnMessage", "$default": "OnMessage"}
	if got := routeFunctions(api); !reflect.DeepEqual(got, want) {
		t.Errorf("routes = %v, want %v", got, want)
	}
	for _, r := range api.Routes {
		if r.Authorizer != nil || r.TwoWay {
			t.Errorf("route %s = %+v", r.Key, r)
		}
	}
	outs := map[string]string{}
	for _, o := range app.Outputs {
		outs[o.Name] = o.Value
	}
	wantOuts := map[string]string{
		"WebSocketURL":  "wss://local.execute-api.eu-west-1.amazonaws.com/default",
		"Endpoint":      "wss://local.execute-api.eu-west-1.amazonaws.com",
		"Id":            "local",
		"Ref":           "local",
		"Stage":         "default",
		"StageResource": "default",
	}
	if !reflect.DeepEqual(outs, wantOuts) {
		t.Errorf("outputs = %v, want %v", outs, wantOuts)
	}
	for _, o := range app.LocalOutputs("127.0.0.1:9000") {
		if o.Name == "WebSocketURL" && o.Value != "ws://127.0.0.1:9000/default" {
			t.Errorf("local URL = %s", o.Value)
		}
	}
	if got := app.Functions["OnMessage"].Environment["ENDPOINT"]; got != "https://local.execute-api.eu-west-1.amazonaws.com/default" {
		t.Errorf("ENDPOINT = %s", got)
	}
	// The permissions SAM generates are the only IAM in the template.
	if joined := strings.Join(app.Unsupported, "\n"); joined != "IAM roles, policies and Lambda permissions are not enforced: every function may call everything" {
		t.Errorf("unsupported = %q", joined)
	}
}

// TestWebSocketAPIGolden compares the CloudFormation resources the
// expansion makes, resolved, with what SAM generates for the same
// template (testdata/websocketapi/*.json; -update rewrites them).
func TestWebSocketAPIGolden(t *testing.T) {
	for _, name := range []string{"defaults", "configured"} {
		t.Run(name, func(t *testing.T) {
			app := parseSAM(t, fixture(t, name+".yaml"), Options{})
			got := map[string]any{}
			for id, r := range app.stack.resources {
				if r.Type == "AWS::Serverless::Function" {
					continue
				}
				p, err := app.props(id)
				if err != nil {
					t.Fatal(err)
				}
				got[id] = map[string]any{"Type": r.Type, "Properties": p}
			}
			b, _ := json.MarshalIndent(map[string]any{"Resources": got, "Unsupported": app.Unsupported}, "", "  ")
			golden := filepath.Join("testdata", "websocketapi", name+".json")
			if *update {
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(want) != string(b)+"\n" {
				t.Errorf("expansion differs from %s:\n%s", golden, b)
			}
		})
	}
}

func TestWebSocketAPIAuthorizer(t *testing.T) {
	tpl := fixture(t, "authorizer.yaml")
	app := parseSAM(t, tpl, Options{})
	api := app.API
	if api.Stage != "prod" || api.Name != "chat" || api.RouteSelectionExpression != "$request.body.type" || len(api.Routes) != 1 {
		t.Fatalf("api = %+v", api)
	}
	au := api.Routes[0].Authorizer
	if au == nil || au.LogicalID != "ApiConnectAuthorizer" || au.Name != "ApiConnectAuthorizer" || au.Function != "Authorize" ||
		!reflect.DeepEqual(au.IdentitySources, []string{"route.request.querystring.token", "route.request.header.Auth"}) {
		t.Fatalf("authorizer = %+v", au)
	}
	// A StageName that is an intrinsic function gives {Api}Stage.
	if r := app.stack.resources["ApiStage"]; r == nil || r.Type != "AWS::ApiGatewayV2::Stage" {
		t.Errorf("stage resource = %+v", r)
	}
	if _, ok := app.stack.resources["ApiAuthorizerPermission"]; !ok {
		t.Error("no ApiAuthorizerPermission")
	}
	if got := app.Outputs[0].Value; got != "wss://local.execute-api.us-east-1.amazonaws.com/prod" {
		t.Errorf("url = %s", got)
	}

	// InvokeRole: API Gateway invokes with the role, SAM adds no permission.
	named := strings.Replace(tpl, "        IdentitySource:", "        Name: tokens\n        InvokeRole: arn:aws:iam::123456789012:role/r\n        IdentitySource:", 1)
	app = parseSAM(t, named, Options{})
	if au := app.API.Routes[0].Authorizer; au == nil || au.Name != "tokens" {
		t.Fatalf("authorizer = %+v", au)
	}
	if _, ok := app.stack.resources["ApiAuthorizerPermission"]; ok {
		t.Error("ApiAuthorizerPermission with InvokeRole")
	}

	// SAM checks AuthType in any case but attaches the authorizer only to
	// CUSTOM as written: "custom" leaves $connect open.
	lower := strings.Replace(tpl, "AuthType: CUSTOM", "AuthType: custom", 1)
	app = parseSAM(t, lower, Options{})
	if au := app.API.Routes[0].Authorizer; au != nil {
		t.Errorf("authorizer for AuthType custom = %+v", au)
	}

	// Auth behind Fn::If is read once resolved.
	block := "      Auth:\n        AuthType: CUSTOM\n        AuthArn: !GetAtt Authorize.Arn\n        IdentitySource: [route.request.querystring.token, route.request.header.Auth]\n"
	if !strings.Contains(tpl, block) {
		t.Fatal("authorizer.yaml changed")
	}
	cond := "Conditions:\n  On: !Equals [a, a]\n" + strings.Replace(tpl, block,
		"      Auth: !If [On, {AuthType: CUSTOM, AuthArn: !GetAtt Authorize.Arn, IdentitySource: [route.request.querystring.token]}, !Ref AWS::NoValue]\n", 1)
	app = parseSAM(t, cond, Options{})
	if au := app.API.Routes[0].Authorizer; au == nil || au.Function != "Authorize" || len(au.IdentitySources) != 1 {
		t.Errorf("authorizer behind Fn::If = %+v", au)
	}

	iam := fixture(t, "iam.yaml")
	app = parseSAM(t, iam, Options{})
	if r := app.API.Routes[0]; r.Key != "$connect" || !r.IAM || r.Authorizer != nil {
		t.Errorf("$connect of Auth AWS_IAM = %+v", r)
	}
	if !strings.Contains(strings.Join(app.Unsupported, "\n"), "ApiConnectRoute: AuthorizationType AWS_IAM: the SigV4 signature of the upgrade is checked (any access key, the local secret); IAM policies are not evaluated") {
		t.Errorf("unsupported = %q", app.Unsupported)
	}
}

func TestWebSocketAPIGlobalsAndStageNames(t *testing.T) {
	tpl := fixture(t, "globals.yaml")
	app := parseSAM(t, tpl, Options{})
	if app.API.RouteSelectionExpression != "$request.body.route" || app.API.Stage != "Prod" {
		t.Errorf("api = %+v", app.API)
	}
	if r := app.stack.resources["ApiProdStage"]; r == nil {
		t.Error("no ApiProdStage")
	}
	if !strings.Contains(strings.Join(app.Unsupported, "\n"), "ApiProdStage: stage variables are not passed to events") {
		t.Errorf("unsupported = %q", app.Unsupported)
	}
	bad := strings.Replace(tpl, "    StageVariables: {a: b}", "    StageName: dev", 1)
	_, err := Parse([]byte(bad), t.TempDir(), Options{})
	var te *Error
	if !errors.As(err, &te) || te.Resource != "Globals" || te.Field != "WebSocketApi.StageName" {
		t.Errorf("err = %v", err)
	}
}

// TestWebSocketAPIMixedForms: routes declared as CloudFormation resources
// on a SAM API join its routes; a CloudFormation API beside a SAM one
// keeps its own routes.
func TestWebSocketAPIMixedForms(t *testing.T) {
	tpl := fixture(t, "mixed.yaml")
	app := parseSAM(t, tpl, Options{})
	want := map[string]string{"$default": "Fn", "ping": "Other"}
	if got := routeFunctions(app.API); !reflect.DeepEqual(got, want) {
		t.Errorf("routes = %v, want %v", got, want)
	}
	for _, r := range app.API.Routes {
		if r.TwoWay != (r.Key == "ping") {
			t.Errorf("route %s two-way = %v", r.Key, r.TwoWay)
		}
	}

	// A second API, in the CloudFormation form, sorted after the SAM one:
	// its route stays its own and it is not served.
	second := fixture(t, "mixed-two-apis.yaml")
	app = parseSAM(t, second, Options{})
	if app.API.LogicalID != "Api" {
		t.Fatalf("served %s", app.API.LogicalID)
	}
	if got := routeFunctions(app.API); !reflect.DeepEqual(got, want) {
		t.Errorf("routes = %v, want %v", got, want)
	}
	if !strings.Contains(strings.Join(app.Unsupported, "\n"), "Zed: a second WebSocket API is not served (only Api)") {
		t.Errorf("unsupported = %q", app.Unsupported)
	}
	if app.Outputs[0].Value != "local-Zed" {
		t.Errorf("Ref Zed = %s", app.Outputs[0].Value)
	}
}

// TestWebSocketAPIRefused: what SAM refuses to transform is refused at
// load, naming the property.
func TestWebSocketAPIRefused(t *testing.T) {
	const head = oneFunction + `  Auth:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn/, Handler: app.auth, Runtime: nodejs22.x}
  Api:
    Type: AWS::Serverless::WebSocketApi
    Properties:
`
	cases := []struct {
		name, props, field, text string
	}{
		{"no routes", "      RouteSelectionExpression: $request.body.action\n", "Properties.Routes", "missing"},
		{"empty routes", "      RouteSelectionExpression: $request.body.action\n      Routes: {}\n", "Properties.Routes", "at least one route"},
		{"no route selection expression", "      Routes:\n        $default: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.RouteSelectionExpression", "missing"},
		{"invalid route key", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        $nonsense: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Routes.$nonsense", "must be alphanumeric"},
		{"route key with a dash", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        send-message: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Routes.send-message", "must be alphanumeric"},
		{"route without function", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        $connect: {IntegrationTimeout: 15000}\n", "Properties.Routes.$connect.FunctionArn", "associated function"},
		{"route not an object", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        $default: !GetAtt Fn.Arn\n", "Properties.Routes.$default", "want an object"},
		{"two keys one ID", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        send: {FunctionArn: !GetAtt Fn.Arn}\n        Send: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Routes", "same logical ID ApiSendRoute"},
		{"request parameters off $connect", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        $default:\n          FunctionArn: !GetAtt Fn.Arn\n          RequestParameters: {route.request.querystring.p1: {Required: true}}\n", "Properties.Routes.$default.RequestParameters", "only supported for the $connect route"},
		{"stage $default", "      RouteSelectionExpression: $request.body.action\n      StageName: $default\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.StageName", "cannot be named $default"},
		{"auth without $connect", "      RouteSelectionExpression: $request.body.action\n      Auth: {AuthType: CUSTOM, AuthArn: !GetAtt Auth.Arn}\n      Routes:\n        $default: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Auth", "only available if there is a $connect route"},
		{"auth without type", "      RouteSelectionExpression: $request.body.action\n      Auth: {AuthArn: !GetAtt Auth.Arn}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Auth.AuthType", "must be specified"},
		{"custom without arn", "      RouteSelectionExpression: $request.body.action\n      Auth: {AuthType: CUSTOM}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Auth.AuthArn", "must be specified if AuthType is CUSTOM"},
		{"unknown auth type", "      RouteSelectionExpression: $request.body.action\n      Auth: {AuthType: Nonsense, AuthArn: !GetAtt Auth.Arn}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Auth.AuthType", "not one of AWS_IAM, CUSTOM or NONE"},
		{"none with config", "      RouteSelectionExpression: $request.body.action\n      Auth: {AuthType: None, AuthArn: !GetAtt Auth.Arn}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Auth", "no additional configurations supported for AuthType NONE"},
		{"iam with config", "      RouteSelectionExpression: $request.body.action\n      Auth: {AuthType: AWS_IAM, IdentitySource: [route.request.header.A]}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Auth", "AuthType AWS_IAM"},
		{"ip address type", "      RouteSelectionExpression: $request.body.action\n      IpAddressType: nonsense\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.IpAddressType", "ipv4 or dualstack"},
		{"mutual TLS", "      RouteSelectionExpression: $request.body.action\n      Domain: {DomainName: x.example.com, CertificateArn: arn, MutualTlsAuthentication: {TruststoreUri: s3://b/k}}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Domain.MutualTlsAuthentication", "not supported for WebSocket APIs"},
		{"domain without certificate", "      RouteSelectionExpression: $request.body.action\n      Domain: {DomainName: x.example.com}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Domain", "both DomainName and CertificateArn"},
		{"edge domain", "      RouteSelectionExpression: $request.body.action\n      Domain: {DomainName: x.example.com, CertificateArn: arn, EndpointConfiguration: EDGE}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Domain.EndpointConfiguration", "want REGIONAL"},
		{"base path", "      RouteSelectionExpression: $request.body.action\n      Domain: {DomainName: x.example.com, CertificateArn: arn, BasePath: [/v1.0]}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.Domain.BasePath", "only letters"},
		{"list settings", "      RouteSelectionExpression: $request.body.action\n      RouteSettings: [{ThrottlingBurstLimit: 100}]\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.RouteSettings", "should be a map"},
		{"unknown property", "      RouteSelectionExpression: $request.body.action\n      CorsConfiguration: {}\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn}\n", "Properties.CorsConfiguration", "not a property"},
		{"unknown route property", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        $connect: {FunctionArn: !GetAtt Fn.Arn, Target: x}\n", "Properties.Routes.$connect.Target", "not a property"},
		{"function not in the template", "      RouteSelectionExpression: $request.body.action\n      Routes:\n        $connect: {FunctionArn: arn:aws:lambda:us-east-1:123456789012:function:elsewhere}\n", "Properties.IntegrationUri", "does not invoke a function of this template"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(head+c.props), t.TempDir(), Options{})
			check(t, err, c.field, c.text)
		})
	}
	// SAM has no function event for WebSocket routes, whatever some
	// examples show.
	const event = `Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.h
      Runtime: nodejs22.x
      Events:
        Connect: {Type: WebSocket, Properties: {Route: $connect}}
`
	_, err := Parse([]byte(event), t.TempDir(), Options{})
	check(t, err, "Properties.Events.Connect.Type", "Routes of its AWS::Serverless::WebSocketApi")
}

// check asserts that err is an *Error on field whose text has text.
func check(t *testing.T, err error, field, text string) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if te.Field != field || !strings.Contains(err.Error(), text) {
		t.Errorf("err = %v (field %q), want field %q and %q", err, te.Field, field, text)
	}
}

// TestWebSocketAPINotEmulated: each property that changes nothing the
// local runtime does gets one line.
func TestWebSocketAPINotEmulated(t *testing.T) {
	tpl := fixture(t, "not-emulated.yaml")
	app := parseSAM(t, tpl, Options{})
	// The domain name resource SAM makes, under the ID SAM gives it.
	if r := app.stack.resources["ApiGatewayDomainNameV2ce78a13742"]; r == nil || r.Type != "AWS::ApiGatewayV2::DomainName" {
		t.Errorf("domain name resource = %+v", r)
	}
	if got := app.Outputs[0].Value; got != "wss://chat.example.com" {
		t.Errorf("${Api.DomainName} = %s", got)
	}
	want := []string{
		"Api: API keys are not checked",
		"Api: DisableExecuteApiEndpoint is not emulated: the local endpoint serves the API",
		"Api: Domain (custom domain name, base path mapping, Route 53 records) is not emulated: the API is served on the local address only",
		"ApiDefaultRoute: ApiKeyRequired is not checked",
		"ApiDefaultStage: AccessLogSettings is not emulated",
		"ApiDefaultStage: RouteSettings is not emulated",
		"ApiDefaultStage: throttling and logging settings are not applied",
		"IAM roles, policies and Lambda permissions are not enforced: every function may call everything",
	}
	got := append([]string(nil), app.Unsupported...)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unsupported =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLogicalIDHash: the IDs SAM derives from a value, as its own
// translator tests have them (websocket_api_custom_domains_regional, whose
// DomainName is a parameter with no value).
func TestLogicalIDHash(t *testing.T) {
	for v, want := range map[any]string{"chat.example.com": "ce78a13742"} {
		if got := logicalIDHash(v); got != want {
			t.Errorf("logicalIDHash(%v) = %s, want %s", v, got, want)
		}
	}
	if got := logicalIDHash(map[string]any{"Ref": "MyDomainName"}); got != "e12ae193a4" {
		t.Errorf("logicalIDHash(Ref MyDomainName) = %s, want e12ae193a4", got)
	}
}

// TestWebSocketAPIConditionalDomain: a Domain behind Fn::If is read once
// resolved, and none at all when it resolves to AWS::NoValue.
func TestWebSocketAPIConditionalDomain(t *testing.T) {
	tpl := fixture(t, "not-emulated.yaml")
	for _, on := range []string{"true", "false"} {
		text := "Conditions:\n  WithDomain: !Equals [\"" + on + "\", \"true\"]\n" + strings.Replace(tpl,
			"      Domain: {DomainName: chat.example.com, CertificateArn: arn:aws:acm:us-east-1:123456789012:certificate/c}",
			"      Domain: !If [WithDomain, {DomainName: chat.example.com, CertificateArn: arn:aws:acm:us-east-1:123456789012:certificate/c}, !Ref AWS::NoValue]", 1)
		text = strings.Replace(text, "Outputs:\n  Domain: {Value: !Sub \"wss://${Api.DomainName}\"}\n", "", 1)
		app := parseSAM(t, text, Options{})
		_, made := app.stack.resources["ApiGatewayDomainNameV2ce78a13742"]
		line := strings.Contains(strings.Join(app.Unsupported, "\n"), "Api: Domain (custom domain name")
		if want := on == "true"; made != want || line != want {
			t.Errorf("WithDomain %s: domain name resource %v, not-emulated line %v", on, made, line)
		}
	}
}
