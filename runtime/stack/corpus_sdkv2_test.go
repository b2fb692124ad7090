package stack_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/runtime/stack"
)

// needSDKv2 skips a sample without node or the AWS SDK for JavaScript v2
// that testdata/corpus/sdkv2/package.json installs.
func needSDKv2(t *testing.T) {
	t.Helper()
	needNode(t)
	if _, err := os.Stat("testdata/corpus/sdkv2/node_modules/aws-sdk/package.json"); err != nil {
		if os.Getenv(dynamotest.RequireEnv) == "1" {
			t.Fatal("testdata/corpus/sdkv2/node_modules is missing: run `make test-deps` (make test does)")
		}
		t.Skip("testdata/corpus/sdkv2/node_modules is missing: run `make test-deps`")
	}
}

// TestCorpusSimpleWebSocketsChatAppSDKv2 runs
// aws-samples/simple-websockets-chat-app at its last commit on the AWS
// SDK for JavaScript v2: nodejs20.x functions whose package.json names
// aws-sdk ^2.1692.0, which `sam build` installs beside them (Lambda's
// Node.js 20 runtime bundles SDK v3 only). Its DocumentClient puts,
// scans and deletes connections, and its sendmessage function builds
// its ApiGatewayManagementApi endpoint as
// {apiId}.execute-api.{AWS_REGION}.amazonaws.com/{stage}. SDK v2 reads
// no AWS_ENDPOINT_URL_* variable, so both its DynamoDB and its management
// calls reach the local runtime by AWS's hostnames. Three people
// chat; one leaves. Unlike the SDK v3 version of the sample, its check of
// e.statusCode matches SDK v2's error for a 410: a row for a connection
// that is long gone is deleted and the message still reaches the others,
// as on AWS.
func TestCorpusSimpleWebSocketsChatAppSDKv2(t *testing.T) {
	short(t)
	needSDKv2(t)
	endpoint := dynamotest.Endpoint(t)
	ddb := dynamotest.Client(t)
	table := "chatvtwo_" + letters(12)
	t.Cleanup(func() {
		ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	obs := &recorder{}
	p := startCorpus(t, stack.Config{
		Template:           "testdata/corpus/sdkv2/simple-websockets-chat-app/template.yaml",
		ParameterOverrides: map[string]string{"TableName": table},
		DynamoDBEndpoint:   endpoint,
		Observer:           obs,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The sample recognises the ghost's 410 and deletes its row.
	ghost := chatStory(ctx, t, p, ddb, table)
	waitFor(t, "the ghost's row to go", func() bool { return len(scanIDs(ctx, t, ddb, table, "connectionId")) == 2 })
	if ids := strings.Join(scanIDs(ctx, t, ddb, table, "connectionId"), ","); strings.Contains(ids, ghost) {
		t.Errorf("rows after the 410: %s, want the ghost's gone", ids)
	}
	p.stop(t)
	logs := p.output.String()
	if !strings.Contains(logs, "Found stale connection, deleting "+ghost) {
		t.Errorf("the sample did not recognise the 410:\n%s", logs)
	}
	if strings.Contains(logs, "Cannot find module 'aws-sdk'") {
		t.Error("the functions did not find the SDK v2 their package.json names")
	}
	if got := strings.Join(obs.routes(), " "); got != "$connect:200 $connect:200 $connect:200 sendmessage:200 $disconnect:200 sendmessage:200 $disconnect:200 $disconnect:200" {
		t.Errorf("routes answered %s", got)
	}
	if got := strings.Join(obs.posts(), " "); !strings.Contains(got, "410:GoneException") || strings.Count(got, ":200:") != 5 {
		t.Errorf("@connections calls %s: want 5 delivered and a 410 for the ghost", got)
	}
	if strings.Contains(logs, "not emulated: execute-api") || strings.Contains(logs, "ENOTFOUND") {
		t.Errorf("the regional execute-api hostname did not reach the local runtime:\n%s", logs)
	}
}
