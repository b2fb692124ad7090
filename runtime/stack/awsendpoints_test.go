package stack_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/runtime/stack"
)

// TestGoFunctionReachesAWSByHostname runs testdata/awsapp: a Go function
// built from its package, on aws-sdk-go-v2's default configuration,
// reaches Lambda (a sibling Python function by !Ref and by !GetAtt Arn,
// RequestResponse, a function error, Event, an unknown name), DynamoDB
// by its regional hostname and the management API of its own API by
// https://{apiId}.execute-api.{region}.amazonaws.com/{stage}, through the
// HTTPS proxy its environment names, with signatures checked; STS, which
// the runtime does not serve, fails at once with NotEmulated and one
// "not emulated:" line.
func TestGoFunctionReachesAWSByHostname(t *testing.T) {
	short(t)
	needBoto3(t)
	endpoint := dynamotest.Endpoint(t)
	p := startCorpus(t, stack.Config{Template: "testdata/awsapp/template.yaml", StackName: "aws" + letters(8), DynamoDBEndpoint: endpoint})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := dial(ctx, t, p.WebSocketURL(), nil)
	start := time.Now()
	c.send(ctx, `{"action":"go"}`)
	var got struct {
		ByName, ByArn, FunctionError, Unknown, Item, STS string
		Event                                            int
	}
	raw := c.read(ctx)
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	t.Logf("report after %v: %s", time.Since(start), raw)
	if !strings.Contains(got.ByName, `"echo": "by name"`) || !strings.Contains(got.ByArn, `"echo": "by arn"`) || !strings.Contains(got.ByName, "-PyFunction") {
		t.Errorf("invoke by name %q, by ARN %q", got.ByName, got.ByArn)
	}
	if got.FunctionError != "Unhandled" || got.Event != 202 || got.Unknown != "ResourceNotFoundException" {
		t.Errorf("function error %q, event %d, unknown %q", got.FunctionError, got.Event, got.Unknown)
	}
	if got.Item == "" || strings.Contains(got.Item, " ") {
		t.Errorf("DynamoDB through its hostname: %q", got.Item)
	}
	if got.STS != "NotEmulated" {
		t.Errorf("sts: %q, want NotEmulated", got.STS)
	}
	p.stop(t)
	logs := p.output.String()
	if n := strings.Count(logs, "not emulated: sts called by "); n != 1 {
		t.Errorf("%d not-emulated lines for sts, want 1", n)
	}
}
