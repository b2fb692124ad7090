package template

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const fidelityTemplate = `AWSTemplateFormatVersion: 2010-09-09
Transform: AWS::Serverless-2016-10-31
Parameters:
  ReadCapacityUnits: {Type: Number, Default: 5, MinValue: 1, MaxValue: 10}
  Ports: {Type: "List<Number>", Default: [8080, 8081]}
  Names: {Type: CommaDelimitedList, Default: "alpha, beta"}
  Ratio: {Type: Number, Default: 0.5}
Conditions:
  Never: !Equals [!Ref Ratio, "2"]
Resources:
  Connections:
    Type: AWS::Serverless::SimpleTable
  Sessions:
    Type: AWS::Serverless::SimpleTable
    Properties:
      TableName: !Join ["-", [!Select [1, !Ref Names], sessions]]
      PrimaryKey: {Name: sessionId, Type: Number}
      ProvisionedThroughput:
        ReadCapacityUnits: !Ref ReadCapacityUnits
        WriteCapacityUnits: !Select [0, !Ref Ports]
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: nodejs22.x
      Environment:
        Variables:
          TABLE: !Ref Connections
          TABLE_ARN: !GetAtt Connections.Arn
          PSEUDO: !Sub "${AWS::Region} ${AWS::AccountId} ${AWS::StackName} ${AWS::Partition} ${AWS::URLSuffix} ${AWS::StackId}"
          TOPICS: !Join [",", !Ref "AWS::NotificationARNs"]
          GONE: !If [Never, x, !Ref "AWS::NoValue"]
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: chat
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.action
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      Target: !Join [/, [integrations, !Ref ConnectInteg]]
  ConnectInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
  SendRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: send
      Target: !Join [/, [integrations, !Ref SendInteg]]
  SendInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
      TemplateSelectionExpression: \$default
      RequestTemplates:
        $default: '{"body": $input.body}'
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: prod
Outputs:
  WebSocketURI:
    Description: The WSS Protocol URI to connect to
    Value: !Sub wss://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}
  ConnectionsURL:
    Value: !Join ["", ["https://", !Ref Api, ".execute-api.", !Ref "AWS::Region", ".", !Ref "AWS::URLSuffix", "/prod/@connections"]]
    Export: {Name: !Sub "${AWS::StackName}-connections"}
  TableName:
    Value: !Ref Sessions
  Hidden:
    Condition: Never
    Value: x
  Imported:
    Value: !ImportValue other-stack-value
`

// TestTemplateFidelity: typed parameter defaults, SimpleTable, the
// pseudo parameters, Outputs and IntegrationType AWS, as CloudFormation
// and SAM treat them.
func TestTemplateFidelity(t *testing.T) {
	app, err := Parse([]byte(fidelityTemplate), t.TempDir(), Options{StackName: "chat", Region: "eu-west-1", AccountID: "111122223333", APIID: "abc123"})
	if err != nil {
		t.Fatal(err)
	}

	// SimpleTable: id String and on-demand by default; PrimaryKey and
	// ProvisionedThroughput from typed parameters otherwise.
	conns, err := app.Tables["Connections"].CreateTableInput()
	if err != nil {
		t.Fatal(err)
	}
	if *conns.TableName != "chat-Connections" || *conns.KeySchema[0].AttributeName != "id" || conns.AttributeDefinitions[0].AttributeType != "S" || conns.BillingMode != "PAY_PER_REQUEST" {
		t.Errorf("Connections = %+v", conns)
	}
	sess, err := app.Tables["Sessions"].CreateTableInput()
	if err != nil {
		t.Fatal(err)
	}
	if *sess.TableName != "beta-sessions" || *sess.KeySchema[0].AttributeName != "sessionId" || sess.AttributeDefinitions[0].AttributeType != "N" ||
		*sess.ProvisionedThroughput.ReadCapacityUnits != 5 || *sess.ProvisionedThroughput.WriteCapacityUnits != 8080 {
		t.Errorf("Sessions = %+v %+v", sess, sess.ProvisionedThroughput)
	}

	env := app.Functions["Fn"].Environment
	want := map[string]string{
		"TABLE":     "chat-Connections",
		"TABLE_ARN": "arn:aws:dynamodb:eu-west-1:111122223333:table/chat-Connections",
		"PSEUDO":    "eu-west-1 111122223333 chat aws amazonaws.com arn:aws:cloudformation:eu-west-1:111122223333:stack/chat/" + localStackUUID,
		"TOPICS":    "",
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("environment = %q, want %q", env, want)
	}

	routes := map[string]string{}
	for _, r := range app.API.Routes {
		routes[r.Key] = r.Function
	}
	if !reflect.DeepEqual(routes, map[string]string{"$connect": "Fn"}) {
		t.Errorf("routes = %v, want $connect only (send is IntegrationType AWS)", routes)
	}
	joined := strings.Join(app.Unsupported, "\n")
	for _, line := range []string{
		"SendInteg: IntegrationType AWS (request templates, TemplateSelectionExpression, integration responses) is not emulated; route send not served: use AWS_PROXY",
		"Outputs.Imported is not resolved locally",
	} {
		if !strings.Contains(joined, line) {
			t.Errorf("unsupported lacks %q:\n%s", line, joined)
		}
	}
	if strings.Contains(joined, "RequestTemplates") || strings.Contains(joined, "SimpleTable") {
		t.Errorf("unsupported repeats what is handled:\n%s", joined)
	}

	wantOut := []Output{
		{Name: "ConnectionsURL", Value: "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/@connections", ExportName: "chat-connections"},
		{Name: "TableName", Value: "beta-sessions"},
		{Name: "WebSocketURI", Description: "The WSS Protocol URI to connect to", Value: "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod"},
	}
	if !reflect.DeepEqual(app.Outputs, wantOut) {
		t.Errorf("outputs = %+v\nwant %+v", app.Outputs, wantOut)
	}
	local := app.LocalOutputs("127.0.0.1:8080")
	if local[0].Value != "http://127.0.0.1:8080/prod/@connections" || local[2].Value != "ws://127.0.0.1:8080/prod" || local[1].Value != "beta-sessions" {
		t.Errorf("local outputs = %+v", local)
	}
	if app.Outputs[2].Value != wantOut[2].Value {
		t.Error("LocalOutputs changed Outputs")
	}
}

// TestTypedParameters: list and number parameters are checked element by
// element, overrides included, and Ref of a Number gives its text.
func TestTypedParameters(t *testing.T) {
	base := `Parameters:
  N: {Type: Number, Default: 5, MaxValue: 10}
  L: {Type: "List<Number>", Default: "1,2"}
  C: {Type: CommaDelimitedList, Default: [a, b], AllowedValues: [a, b, c]}
Resources:
  T:
    Type: AWS::Serverless::SimpleTable
    Properties:
      TableName: !Join ["-", [!Ref N, !Join [".", !Ref L], !Join [".", !Ref C]]]
`
	app, err := Parse([]byte(base), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := app.Tables["T"].Name; got != "5-1.2-a.b" {
		t.Errorf("table name %q, want 5-1.2-a.b", got)
	}
	for _, tc := range []struct{ key, value, why string }{
		{"N", "11", "above MaxValue"},
		{"N", "five", "not a number"},
		{"L", "1,x", "element 1: not a number"},
		{"C", "a,d", "element 1: not one of AllowedValues"},
	} {
		_, err := Parse([]byte(base), t.TempDir(), Options{ParameterOverrides: map[string]string{tc.key: tc.value}})
		var te *Error
		if !errors.As(err, &te) || te.Resource != "Parameters" || te.Field != tc.key || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s=%s: err = %v, want %q", tc.key, tc.value, err, tc.why)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	for region, want := range map[string][2]string{
		"us-east-1":     {"aws", "amazonaws.com"},
		"cn-north-1":    {"aws-cn", "amazonaws.com.cn"},
		"us-gov-west-1": {"aws-us-gov", "amazonaws.com"},
	} {
		if p, s := partitionOf(region); p != want[0] || s != want[1] {
			t.Errorf("%s: %s %s, want %v", region, p, s, want)
		}
	}
}
