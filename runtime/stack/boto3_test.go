package stack_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/runtime/stack"
)

// TestPythonFunctionReachesAWSByHostname runs testdata/boto3app: a
// Python function on boto3 whose clients name the regional hostnames
// themselves (so no AWS_ENDPOINT_URL_* variable decides), through the
// HTTPS proxy its environment names: it writes and reads DynamoDB,
// invokes a sibling by its ARN and posts what it saw through
// https://{apiId}.execute-api.{region}.amazonaws.com/{stage} with
// signatures checked; SQS, which the runtime does not serve, fails at
// once with NotEmulated.
func TestPythonFunctionReachesAWSByHostname(t *testing.T) {
	short(t)
	needBoto3(t)
	endpoint := dynamotest.Endpoint(t)
	stackName := "py" + letters(8)
	ddb := dynamotest.Client(t)
	t.Cleanup(func() {
		ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(stackName + "-items")})
	})
	obs := &recorder{}
	p := startCorpus(t, stack.Config{Template: "testdata/boto3app/template.yaml", StackName: stackName, DynamoDBEndpoint: endpoint, Observer: obs})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dial(ctx, t, p.WebSocketURL(), nil)
	c.send(ctx, `{"action":"go"}`)
	raw := c.read(ctx)
	var got struct {
		Item   string
		Invoke struct{ Echo, Function string }
		SQS    string
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if got.Item == "" || scanIDs(ctx, t, ddb, stackName+"-items", "id")[0] != got.Item {
		t.Errorf("DynamoDB through its hostname: %q", got.Item)
	}
	if got.Invoke.Echo != "hi" || got.Invoke.Function != stackName+"-Target" {
		t.Errorf("invoke by ARN: %+v", got.Invoke)
	}
	if got.SQS != "NotEmulated" {
		t.Errorf("sqs: %q, want NotEmulated", got.SQS)
	}
	if posts := strings.Join(obs.posts(), " "); !strings.HasPrefix(posts, "POST:200:") {
		t.Errorf("@connections calls %s", posts)
	}
	p.stop(t)
	if logs := p.output.String(); strings.Count(logs, "not emulated: sqs called by "+stackName+"-Caller") != 1 {
		t.Errorf("want one not-emulated line for sqs:\n%s", logs)
	}
}
