// Command gofn is the Go function of the template tests: a
// provided.al2023 function built by `streamer dev` from this package
// (CodeUri points here). Its route key picks what it does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	switch ev.RequestContext.RouteKey {
	case "$connect":
		if ev.Headers["X-Fail-Connect"] != "" {
			return events.APIGatewayProxyResponse{}, errors.New("connect failed on purpose")
		}
		if ev.RequestContext.Authorizer == nil {
			return events.APIGatewayProxyResponse{}, errors.New("no authorizer context on $connect")
		}
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "$disconnect":
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	case "whoami":
		b, _ := json.Marshal(ev.RequestContext.Authorizer)
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: string(b)}, nil
	case "pid":
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: strconv.Itoa(os.Getpid())}, nil
	case "crash":
		fmt.Printf("crashing on purpose in process %d\n", os.Getpid())
		os.Exit(2)
	case "hang":
		fmt.Printf("hanging on purpose in process %d\n", os.Getpid())
		time.Sleep(time.Hour)
	}
	return events.APIGatewayProxyResponse{}, fmt.Errorf("unexpected route %q", ev.RequestContext.RouteKey)
}

func main() { lambda.Start(handle) }
