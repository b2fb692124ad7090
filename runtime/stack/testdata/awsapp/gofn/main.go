// Command gofn is the Go function of the AWS-endpoint tests: with the
// SDK's default configuration and no endpoint of its own, it calls AWS by
// hostname and posts what it saw back to the client through the
// management API of its own WebSocket API, built from the event as
// https://{apiId}.execute-api.{region}.amazonaws.com/{stage}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// report is what the function posts back.
type report struct {
	ByName        string `json:"byName"`
	ByArn         string `json:"byArn"`
	FunctionError string `json:"functionError"`
	Event         int32  `json:"event"`
	Unknown       string `json:"unknown"`
	Item          string `json:"item"`
	STS           string `json:"sts"`
}

func handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	if ev.RequestContext.RouteKey != "$default" {
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	var r report
	lc := awslambda.NewFromConfig(cfg)
	invoke := func(name, payload string, typ lambdatypes.InvocationType) (*awslambda.InvokeOutput, error) {
		return lc.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload), InvocationType: typ})
	}
	if out, err := invoke(os.Getenv("TARGET_NAME"), `{"say":"by name"}`, ""); err == nil {
		r.ByName = string(out.Payload)
	} else {
		r.ByName = err.Error()
	}
	if out, err := invoke(os.Getenv("TARGET_ARN"), `{"say":"by arn"}`, ""); err == nil {
		r.ByArn = string(out.Payload)
	} else {
		r.ByArn = err.Error()
	}
	if out, err := invoke(os.Getenv("TARGET_NAME"), `{"fail":true}`, ""); err == nil {
		r.FunctionError = aws.ToString(out.FunctionError)
	}
	if out, err := invoke(os.Getenv("TARGET_NAME"), `{"say":"later"}`, lambdatypes.InvocationTypeEvent); err == nil {
		r.Event = out.StatusCode
	}
	_, err = invoke("no-such-function", `{}`, "")
	var nf *lambdatypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		r.Unknown = "ResourceNotFoundException"
	}

	// DynamoDB by its regional hostname, whatever AWS_ENDPOINT_URL_DYNAMODB says.
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String("https://dynamodb." + cfg.Region + ".amazonaws.com")
	})
	table := aws.String(os.Getenv("TABLE"))
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: ev.RequestContext.ConnectionID}}}); err != nil {
		r.Item = err.Error()
	} else if got, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: ev.RequestContext.ConnectionID}}}); err != nil {
		r.Item = err.Error()
	} else if s, ok := got.Item["id"].(*types.AttributeValueMemberS); ok {
		r.Item = s.Value
	}

	_, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	var api smithy.APIError
	if errors.As(err, &api) {
		r.STS = api.ErrorCode()
	}

	body, _ := json.Marshal(r)
	mgmt := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String("https://" + ev.RequestContext.APIID + ".execute-api." + cfg.Region + ".amazonaws.com/" + ev.RequestContext.Stage)
	})
	if _, err := mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(ev.RequestContext.ConnectionID), Data: body}); err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

func main() { lambda.Start(handle) }
