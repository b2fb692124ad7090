package template_test

import (
	"fmt"

	"github.com/streamer-go/streamer/runtime/template"
)

func ExampleParse() {
	yaml := `
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: nodejs20.x}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
  Default:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $default, Target: !Sub "integrations/${Integration}"}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: !Ref Stage}
`
	app, err := template.Parse([]byte(yaml), "/app", template.Options{ParameterOverrides: map[string]string{"Stage": "prod"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range app.API.Routes {
		f := app.Functions[r.Function]
		fmt.Println(app.API.Stage, r.Key, "→", f.Name, f.Runtime, f.Handler, f.CodeDir, f.Timeout)
	}
	// Output: prod $default → local-Fn nodejs20.x app.handler /app/src 3s
}
