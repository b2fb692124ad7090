// Command echo is the function of the makefile-build tests: a Go
// provided.al2023 function that its Makefile builds, as `sam build` does
// for BuildMethod makefile. It answers each message through the
// management API at https://{domainName}/{stage} with the greeting the
// Makefile put beside it and the name its link flags gave it.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

// builtBy is set by the Makefile's link flags.
var builtBy = "nobody"

func handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	if ev.RequestContext.RouteKey != "$default" {
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	greeting, err := os.ReadFile(filepath.Join(os.Getenv("LAMBDA_TASK_ROOT"), "greeting.txt"))
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	endpoint := "https://" + ev.RequestContext.DomainName + "/" + ev.RequestContext.Stage
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) { o.BaseEndpoint = aws.String(endpoint) })
	msg := fmt.Sprintf("%s %s (built by %s)", greeting, ev.Body, builtBy)
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(ev.RequestContext.ConnectionID),
		Data:         []byte(msg),
	}); err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func main() { lambda.Start(handle) }
