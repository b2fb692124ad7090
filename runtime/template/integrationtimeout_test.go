package template

import (
	"strings"
	"testing"
	"time"
)

// routeTimeouts maps each route key to its IntegrationTimeout.
func routeTimeouts(api *API) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, r := range api.Routes {
		out[r.Key] = r.IntegrationTimeout
	}
	return out
}

// cfnTimeoutTemplate is a CloudFormation WebSocket API whose sendMessage
// integration has TimeoutInMillis timeout (none when empty) and whose
// $default integration has none.
func cfnTimeoutTemplate(timeout string) string {
	setting := ""
	if timeout != "" {
		setting = "\n      TimeoutInMillis: " + timeout
	}
	return oneFunction + `  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: chat, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  SendIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations` + setting + `
  SendRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: sendMessage, Target: !Sub "integrations/${SendIntegration}"}
  DefaultIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $default, Target: !Sub "integrations/${DefaultIntegration}"}
`
}

// samTimeoutTemplate is the same API in SAM's form, sendMessage with
// IntegrationTimeout timeout.
func samTimeoutTemplate(timeout string) string {
	return oneFunction + `  Api:
    Type: AWS::Serverless::WebSocketApi
    Properties:
      RouteSelectionExpression: $request.body.action
      Routes:
        sendMessage: {FunctionArn: !GetAtt Fn.Arn, IntegrationTimeout: ` + timeout + `}
        $default: {FunctionArn: !GetAtt Fn.Arn}
`
}

// TestIntegrationTimeout: an integration's TimeoutInMillis, written in
// CloudFormation's form or as SAM's route IntegrationTimeout, is the
// route's IntegrationTimeout; a route without one has zero (API Gateway's
// default), and nothing says the setting is not emulated.
func TestIntegrationTimeout(t *testing.T) {
	for name, tpl := range map[string]string{
		"CloudFormation":          cfnTimeoutTemplate("1500"),
		"SAM":                     samTimeoutTemplate("1500"),
		"CloudFormation string":   cfnTimeoutTemplate(`"1500"`),
		"SAM from a parameter":    "Parameters:\n  T: {Type: Number, Default: 1500}\n" + samTimeoutTemplate("!Ref T"),
		"CloudFormation smallest": strings.Replace(cfnTimeoutTemplate("1500"), "1500", "50", 1),
	} {
		t.Run(name, func(t *testing.T) {
			app := parseSAM(t, tpl, Options{})
			want := 1500 * time.Millisecond
			if strings.Contains(name, "smallest") {
				want = MinIntegrationTimeout
			}
			got := routeTimeouts(app.API)
			if got["sendMessage"] != want || got["$default"] != 0 {
				t.Errorf("timeouts = %v, want sendMessage %v and $default 0", got, want)
			}
			for _, u := range app.Unsupported {
				if strings.Contains(u, "TimeoutInMillis") || strings.Contains(u, "IntegrationTimeout") {
					t.Errorf("unsupported: %q", u)
				}
			}
		})
	}
	app := parseSAM(t, cfnTimeoutTemplate("29000"), Options{})
	if got := routeTimeouts(app.API)["sendMessage"]; got != MaxIntegrationTimeout {
		t.Errorf("29000 ms = %v, want %v", got, MaxIntegrationTimeout)
	}
}

// TestIntegrationTimeoutRefused: what API Gateway refuses at deploy, a
// timeout outside 50..29,000 ms or not a number, is refused at load with
// an *Error naming the property as the template spells it.
func TestIntegrationTimeoutRefused(t *testing.T) {
	for _, c := range []struct {
		name, tpl, resource, field, text string
	}{
		{"CloudFormation below", cfnTimeoutTemplate("49"), "SendIntegration", "Properties.TimeoutInMillis", "49 ms is outside the 50..29000 ms"},
		{"CloudFormation above", cfnTimeoutTemplate("29001"), "SendIntegration", "Properties.TimeoutInMillis", "29001 ms is outside"},
		{"CloudFormation HTTP API's 30 s", cfnTimeoutTemplate("30000"), "SendIntegration", "Properties.TimeoutInMillis", "30000 ms is outside"},
		{"CloudFormation zero", cfnTimeoutTemplate("0"), "SendIntegration", "Properties.TimeoutInMillis", "0 ms is outside"},
		{"CloudFormation not a number", cfnTimeoutTemplate("soon"), "SendIntegration", "Properties.TimeoutInMillis", `want an integer number of milliseconds, got "soon"`},
		{"CloudFormation seconds", cfnTimeoutTemplate("1.5"), "SendIntegration", "Properties.TimeoutInMillis", "want an integer"},
		{"SAM below", samTimeoutTemplate("10"), "Api", "Properties.Routes.sendMessage.IntegrationTimeout", "10 ms is outside the 50..29000 ms"},
		{"SAM above", samTimeoutTemplate("60000"), "Api", "Properties.Routes.sendMessage.IntegrationTimeout", "60000 ms is outside"},
		{"SAM object", samTimeoutTemplate("{Seconds: 5}"), "Api", "Properties.Routes.sendMessage.IntegrationTimeout", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.tpl), t.TempDir(), Options{})
			check(t, err, c.field, c.text)
			if err != nil && !strings.Contains(err.Error(), c.resource+": ") {
				t.Errorf("err = %v, want it to name %s", err, c.resource)
			}
		})
	}
}
