package template

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadDeployTemplate(t *testing.T) {
	app, err := Load("../../deploy/template.json", Options{ParameterOverrides: map[string]string{"AllowAnonymous": "true", "StageName": "dev"}, StackName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if app.API == nil || app.API.Stage != "dev" || app.API.RouteSelectionExpression != "$request.body.action" {
		t.Fatalf("api = %+v", app.API)
	}
	got := map[string]string{}
	for _, r := range app.API.Routes {
		got[r.Key] = r.Function
	}
	want := map[string]string{"$connect": "ConnectFunction", "$disconnect": "DisconnectFunction", "$default": "DefaultFunction"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("route %s → %q, want %q", k, got[k], v)
		}
	}
	if len(app.Functions) != 5 {
		t.Fatalf("functions = %d", len(app.Functions))
	}
	f := app.Functions["StreamFunction"]
	if f.Runtime != "provided.al2023" || f.Handler != "bootstrap" || f.Timeout != 300*time.Second || f.MemoryMB != 256 {
		t.Errorf("stream function = %+v", f)
	}
	if f.Environment["STREAMER_FUNCTION"] != "stream" || f.Environment["STREAMER_REQUESTS_TABLE"] != "streamer-requests" || f.Environment["STREAMER_ALLOW_ANONYMOUS"] != "true" {
		t.Errorf("env = %v", f.Environment)
	}
	if f.CodeDir != mustAbs(t, "../../deploy/build") {
		t.Errorf("code dir = %s", f.CodeDir)
	}
	if app.Functions["DefaultFunction"].Timeout != 29*time.Second {
		t.Errorf("default timeout = %v", app.Functions["DefaultFunction"].Timeout)
	}
	if len(app.StreamSources) != 1 {
		t.Fatalf("stream sources = %+v", app.StreamSources)
	}
	src := app.StreamSources[0]
	if src.Function != "StreamFunction" || src.Table != "RequestsTable" || src.BatchSize != 10 || !src.ReportBatchItemFailures || src.MaximumRetryAttempts != 5 || !src.BisectBatchOnFunctionError || len(src.Filters) != 1 {
		t.Errorf("stream source = %+v", src)
	}
	if len(app.Schedules) != 1 || app.Schedules[0].Function != "SweepFunction" || app.Schedules[0].Expression != "rate(1 minute)" {
		t.Errorf("schedules = %+v", app.Schedules)
	}
	if app.Tables["RequestsTable"].StreamViewType != "NEW_AND_OLD_IMAGES" || app.Tables["ConnectionsTable"].Name != "streamer-connections" {
		t.Errorf("tables = %+v", app.Tables)
	}
	in, err := app.Tables["RequestsTable"].CreateTableInput()
	if err != nil {
		t.Fatal(err)
	}
	if *in.TableName != "streamer-requests" || len(in.GlobalSecondaryIndexes) != 3 || len(in.KeySchema) != 1 {
		t.Errorf("create table = %+v", in)
	}
	joined := strings.Join(app.Unsupported, "\n")
	if !strings.Contains(joined, "TimeToLiveSpecification") || !strings.Contains(joined, "IAM") {
		t.Errorf("unsupported = %q", joined)
	}
}

func TestRulesRefuseParameters(t *testing.T) {
	_, err := Load("../../deploy/template.json", Options{})
	var te *Error
	if !errors.As(err, &te) || te.Resource != "Rules" || te.Field != "AuthChosen.Assertions[0]" || !strings.Contains(err.Error(), "AllowAnonymous=true") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load("../../deploy/template.json", Options{ParameterOverrides: map[string]string{"JWTAlgorithms": "RS256", "JWTKeyFile": "/k.pem"}}); err != nil {
		t.Fatal(err)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

const yamlTemplate = `AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  UseTable:
    Type: String
    Default: "yes"
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  WithTable: !Not [!Equals [!Ref UseTable, "no"]]
Globals:
  Function:
    Runtime: nodejs20.x
    Timeout: 5
    Environment:
      Variables:
        SHARED: !Sub "${AWS::StackName}-${Stage}"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Condition: WithTable
    Properties:
      TableName: !Join ["-", [!Ref "AWS::StackName", conns]]
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: connectionId, AttributeType: S}]
      KeySchema: [{AttributeName: connectionId, KeyType: HASH}]
  OnConnect:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Environment:
        Variables:
          TABLE: !If [WithTable, !Ref Table, none]
          MODE: !If [IsProd, production, development]
          ARN: !GetAtt OnConnect.Arn
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: chat
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: "$request.body.action"
  Auth:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Api
      AuthorizerType: REQUEST
      AuthorizerUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${OnConnect.Arn}/invocations
      IdentitySource: [route.request.querystring.token]
      Name: auth
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub
        - arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn}/invocations
        - Fn: !GetAtt [OnConnect, Arn]
  Connect:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Auth
      Target: !Join [/, [integrations, !Ref Integ]]
  Send:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: sendmessage
      Target: !Sub integrations/${Integ}
  SendResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties:
      ApiId: !Ref Api
      RouteId: !Ref Send
      RouteResponseKey: $default
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: !Ref Stage
  Queue:
    Type: AWS::SQS::Queue
`

func TestParseYAMLShortTags(t *testing.T) {
	app, err := Parse([]byte(yamlTemplate), "/code", Options{StackName: "chat", ParameterOverrides: map[string]string{"Stage": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	f := app.Functions["OnConnect"]
	if f == nil {
		t.Fatal("no function")
	}
	wantEnv := map[string]string{"SHARED": "chat-prod", "TABLE": "chat-conns", "MODE": "production", "ARN": "arn:aws:lambda:us-east-1:123456789012:function:chat-OnConnect"}
	for k, v := range wantEnv {
		if f.Environment[k] != v {
			t.Errorf("env %s = %q, want %q", k, f.Environment[k], v)
		}
	}
	if f.Timeout != 5*time.Second || f.Runtime != "nodejs20.x" || f.CodeDir != "/code/src" || f.Name != "chat-OnConnect" {
		t.Errorf("function = %+v", f)
	}
	if app.API.Stage != "prod" || len(app.API.Routes) != 2 {
		t.Fatalf("api = %+v", app.API)
	}
	c, s := app.API.Routes[0], app.API.Routes[1]
	if c.Key != "$connect" || c.Authorizer == nil || c.Authorizer.Function != "OnConnect" || c.Authorizer.IdentitySources[0] != "route.request.querystring.token" || c.TwoWay {
		t.Errorf("connect = %+v", c)
	}
	if s.Key != "sendmessage" || !s.TwoWay || s.Function != "OnConnect" {
		t.Errorf("send = %+v", s)
	}
	if !strings.Contains(strings.Join(app.Unsupported, "\n"), "Queue (AWS::SQS::Queue) is not emulated") {
		t.Errorf("unsupported = %q", app.Unsupported)
	}

	// The condition turns the table off: the Fn::If takes its other branch.
	app, err = Parse([]byte(yamlTemplate), "/code", Options{ParameterOverrides: map[string]string{"UseTable": "no"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(app.Tables) != 0 || app.Functions["OnConnect"].Environment["TABLE"] != "none" || app.Functions["OnConnect"].Environment["MODE"] != "development" {
		t.Errorf("tables %v env %v", app.Tables, app.Functions["OnConnect"].Environment)
	}
}

func TestErrorsNameResourceAndField(t *testing.T) {
	cases := []struct {
		name, text string
		overrides  map[string]string
		resource   string
		field      string
	}{
		{"bad ref", strings.Replace(yamlTemplate, "TABLE: !If [WithTable, !Ref Table, none]", "TABLE: !Ref Nope", 1), nil, "OnConnect", "Properties.Environment.Variables.TABLE.Ref"},
		{"not allowed", yamlTemplate, map[string]string{"Stage": "qa"}, "Parameters", "Stage"},
		{"unknown override", yamlTemplate, map[string]string{"Nope": "1"}, "Parameters", "Nope"},
		{"missing key schema", strings.Replace(yamlTemplate, "      KeySchema: [{AttributeName: connectionId, KeyType: HASH}]\n", "", 1), nil, "Table", "Properties.KeySchema"},
		{"bad timeout", strings.Replace(yamlTemplate, "Timeout: 5", "Timeout: 5000", 1), nil, "OnConnect", "Properties.Timeout"},
		{"missing route key", strings.Replace(yamlTemplate, "RouteKey: sendmessage", "OperationName: x", 1), nil, "Send", "Properties.RouteKey"},
		{"bad integration", strings.Replace(yamlTemplate, "Target: !Sub integrations/${Integ}", "Target: integrations/Other", 1), nil, "Send", "Properties.Target"},
		{"sub unknown", strings.Replace(yamlTemplate, `"${AWS::StackName}-${Stage}"`, `"${Missing}"`, 1), nil, "OnConnect", "Properties.Environment.Variables.SHARED.Fn::Sub"},
		{"no resources", "Resources: {}\n", nil, "Resources", ""},
		{"no default", strings.Replace(yamlTemplate, "    Default: dev\n", "", 1), nil, "Parameters", "Stage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.text), "/code", Options{ParameterOverrides: c.overrides})
			var te *Error
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if te.Resource != c.resource || te.Field != c.field {
				t.Errorf("err = %v: resource %q field %q, want %q %q", err, te.Resource, te.Field, c.resource, c.field)
			}
		})
	}
}

func TestBrokenFiles(t *testing.T) {
	for name, text := range map[string]string{
		"empty":       "",
		"json":        `{"Resources": {`,
		"yaml":        "Resources:\n  a: [\n",
		"unknown tag": "Resources:\n  A:\n    Type: !Bogus x\n",
		"list":        "[1, 2]",
		"dup key":     "Resources:\n  A: {Type: X}\n  A: {Type: Y}\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(text), "/", Options{}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseOverrides(t *testing.T) {
	m, err := ParseOverrides([]string{"A=1", "B=x=y", "ParameterKey=C,ParameterValue=3", "D="})
	if err != nil {
		t.Fatal(err)
	}
	if m["A"] != "1" || m["B"] != "x=y" || m["C"] != "3" || m["D"] != "" || len(m) != 4 {
		t.Fatalf("m = %v", m)
	}
	if _, err := ParseOverrides([]string{"novalue"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}
