package template

import (
	"strings"
	"testing"
)

// cfnIAM is a CloudFormation WebSocket API whose $connect route has
// AuthorizationType AWS_IAM, and a $default route that names it too.
const cfnIAM = `Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties: {Handler: app.handler, Runtime: nodejs22.x, Code: fn/, Role: arn:aws:iam::123456789012:role/r}
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: api, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      AuthorizationType: AWS_IAM
      Target: !Sub integrations/${Integration}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      AuthorizationType: AWS_IAM
      Target: !Sub integrations/${Integration}
`

// TestRouteAuthorizationTypeAWSIAM: AWS_IAM on $connect marks the route
// and says once what is checked and what is not; on another route, which
// API Gateway never authorizes, it is a line and nothing more.
func TestRouteAuthorizationTypeAWSIAM(t *testing.T) {
	app, err := Parse([]byte(cfnIAM), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	iam := map[string]bool{}
	for _, r := range app.API.Routes {
		iam[r.Key] = r.IAM
	}
	if !iam["$connect"] || iam["$default"] || len(iam) != 2 {
		t.Errorf("IAM of the routes = %v, want only $connect's", iam)
	}
	joined := strings.Join(app.Unsupported, "\n")
	for _, want := range []string{
		"ConnectRoute: AuthorizationType AWS_IAM: the SigV4 signature of the upgrade is checked (any access key, the local secret); IAM policies are not evaluated",
		"DefaultRoute: AuthorizationType AWS_IAM is not checked on route $default (API Gateway authorizes only $connect)",
	} {
		if strings.Count(joined, want) != 1 {
			t.Errorf("unsupported lines lack %q once:\n%s", want, joined)
		}
	}
}
