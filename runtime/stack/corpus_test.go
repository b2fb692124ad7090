package stack_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/runtime/dynalite"
	"github.com/streamer-go/streamer/runtime/local"
	"github.com/streamer-go/streamer/runtime/stack"
)

// The corpus (testdata/corpus, see its SOURCES) is public SAM apps by
// other authors, copied unmodified, each driven through its user story by
// real WebSocket clients. testdata/corpus/node_modules holds the AWS SDK
// for JavaScript v3 that Lambda's Node.js runtimes bundle (the samples
// ship none); `make test-deps` installs it from its lockfile.

// recorder is an Observer that keeps the routes' answers and the
// @connections calls.
type recorder struct {
	mu    sync.Mutex
	route []string
	mgmt  []string
}

func (r *recorder) ConnectionOpened(local.ConnectionInfo)              {}
func (r *recorder) ConnectionClosed(local.ConnectionInfo, int, string) {}
func (r *recorder) RouteInvoked(ri local.RouteInvocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.route = append(r.route, fmt.Sprintf("%s:%d", ri.RouteKey, ri.Status))
}
func (r *recorder) ManagementCalled(m local.ManagementCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mgmt = append(r.mgmt, fmt.Sprintf("%s:%d:%s", m.Method, m.Status, m.ErrorType))
}
func (r *recorder) routes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.route...)
}
func (r *recorder) posts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.mgmt...)
}

// needNode skips a sample without node or the corpus's SDK.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	if _, err := os.Stat("testdata/corpus/node_modules/@aws-sdk/client-dynamodb"); err != nil {
		if os.Getenv(dynamotest.RequireEnv) == "1" {
			t.Fatal("testdata/corpus/node_modules is missing: run `make test-deps` (make test does)")
		}
		t.Skip("testdata/corpus/node_modules is missing: run `make test-deps`")
	}
}

// needBoto3 skips a sample without python3 and boto3, which Lambda's
// Python runtimes bundle.
func needBoto3(t *testing.T) {
	t.Helper()
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skip("python3 with boto3 not installed")
	}
}

// letters is a random name of n lowercase letters: table names of samples
// whose parameters allow letters only.
func letters(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

// scanIDs lists the values of attribute key in table.
func scanIDs(ctx context.Context, t *testing.T, ddb *dynamodb.Client, table, key string) []string {
	t.Helper()
	out, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range out.Items {
		if s, ok := it[key].(*types.AttributeValueMemberS); ok {
			ids = append(ids, s.Value)
		}
	}
	sort.Strings(ids)
	return ids
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// chatStory drives simple-websockets-chat-app's user story through p,
// whatever SDK its functions use: three people connect (a row each in
// table), a's message reaches all three, c leaves (its row goes), then b
// writes while the table holds a row for a connection long gone (its
// $disconnect never came) and a and b still read the message. It returns
// that row's id; what the sample does with the 410 the post to it gets is
// the caller's to check.
func chatStory(ctx context.Context, t *testing.T, p *running, ddb *dynamodb.Client, table string) (ghost string) {
	t.Helper()
	a := dial(ctx, t, p.WebSocketURL(), nil)
	b := dial(ctx, t, p.WebSocketURL(), nil)
	c := dial(ctx, t, p.WebSocketURL(), nil)
	if ids := scanIDs(ctx, t, ddb, table, "connectionId"); len(ids) != 3 {
		t.Fatalf("connections stored after three $connect: %v", ids)
	}
	a.send(ctx, `{"action":"sendmessage","data":"hello from a"}`)
	for who, cl := range map[string]*client{"a": a, "b": b, "c": c} {
		if got := cl.read(ctx); got != "hello from a" {
			t.Fatalf("%s read %q", who, got)
		}
	}

	// c leaves: $disconnect deletes its row.
	c.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "c's row to go", func() bool { return len(scanIDs(ctx, t, ddb, table, "connectionId")) == 2 })

	// A ghost row: the post to it answers 410 GoneException.
	ghost = "R2hvc3RHaG9zdA="
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{"connectionId": &types.AttributeValueMemberS{Value: ghost}}}); err != nil {
		t.Fatal(err)
	}
	b.send(ctx, `{"action":"sendmessage","data":"who is there?"}`)
	if got := a.read(ctx); got != "who is there?" {
		t.Fatalf("a read %q", got)
	}
	if got := b.read(ctx); got != "who is there?" {
		t.Fatalf("b read %q", got)
	}
	return ghost
}

// TestCorpusSimpleWebSocketsChatApp runs aws-samples/simple-websockets-chat-app:
// Node.js 20 functions on the bundled SDK v3, a DynamoDB table of
// connections, and a sendmessage function that builds the management
// endpoint as https://{apiId}.execute-api.{AWS_REGION}.amazonaws.com/{stage}.
// Three people chat; one leaves. A row for a connection that is long gone
// (its $disconnect never came) makes sendmessage fail as it would on AWS:
// the sample checks e.statusCode, which SDK v3 errors do not have (the
// status is in $metadata), so the 410 is rethrown, the row stays and the
// function answers 500, while the live connections still get the message.
func TestCorpusSimpleWebSocketsChatApp(t *testing.T) {
	short(t)
	needNode(t)
	endpoint := dynamotest.Endpoint(t)
	ddb := dynamotest.Client(t)
	table := "chat_" + letters(12)
	t.Cleanup(func() {
		ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	obs := &recorder{}
	p := startCorpus(t, stack.Config{
		Template:           "testdata/corpus/simple-websockets-chat-app/template.yaml",
		ParameterOverrides: map[string]string{"TableName": table},
		DynamoDBEndpoint:   endpoint,
		Observer:           obs,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !strings.HasSuffix(p.WebSocketURL(), "/Prod") {
		t.Errorf("WebSocket URL %s: want the template's stage Prod", p.WebSocketURL())
	}

	ghost := chatStory(ctx, t, p, ddb, table)
	// What AWS does with this sample: the ghost stays (and the sender's
	// own row too, which the sample would delete on a 410 it recognised).
	if ids := scanIDs(ctx, t, ddb, table, "connectionId"); len(ids) != 3 || !strings.Contains(strings.Join(ids, ","), ghost) {
		t.Errorf("rows after the 410: %v, want a's, b's and the ghost", ids)
	}
	p.stop(t)
	logs := p.output.String()
	if strings.Contains(logs, "Found stale connection") {
		t.Error("the sample recognised the 410, which its SDK v3 error does not allow")
	}
	if got := strings.Join(obs.routes(), " "); got != "$connect:200 $connect:200 $connect:200 sendmessage:200 $disconnect:200 sendmessage:500 $disconnect:200 $disconnect:200" {
		t.Errorf("routes answered %s", got)
	}
	if got := strings.Join(obs.posts(), " "); !strings.Contains(got, "410:GoneException") {
		t.Errorf("@connections calls %s: no 410 for the ghost", got)
	}
	if strings.Contains(logs, "not emulated: execute-api") || strings.Contains(logs, "ENOTFOUND") {
		t.Errorf("the regional execute-api hostname did not reach the local runtime:\n%s", logs)
	}
}

// TestCorpusAckConnectRoute runs serverless-patterns'
// apigw-websocket-ack-connect-route: a Python $connect function invokes
// another function of the template asynchronously (lambda.invoke,
// InvocationType Event, by its FunctionName) with the callback URL built
// from domainName and stage; that function checks the connection with
// GetConnection and greets it through PostToConnection.
func TestCorpusAckConnectRoute(t *testing.T) {
	short(t)
	needBoto3(t)
	p := startCorpus(t, stack.Config{Template: "testdata/corpus/apigw-websocket-ack-connect-route/template.yml", StackName: "ack"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := dial(ctx, t, p.WebSocketURL(), nil)
	if got := c.read(ctx); got != "Hello XXX, we are now connected!! " {
		t.Fatalf("greeting %q", got)
	}
	// The $connect response body never reaches the client, as on AWS:
	// the greeting is the only message.
	c.c.Close(websocket.StatusNormalClosure, "bye")
	p.stop(t)
	logs := p.output.String()
	for _, want := range []string{"WebsocketPostToConnectionId | Got an event from parent lambda", "'HTTPStatusCode': 200", "ack-ondisconnect-function | Connection has been disconnected"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs, "not emulated: lambda") {
		t.Error("lambda.invoke was not served")
	}
}

// TestCorpusNodeSDKv2OnNode24 runs serverless-patterns'
// apigw-websocket-api-lambda, whose functions require('aws-sdk') (SDK
// v2) on nodejs24.x. Lambda's Node.js 18 and later runtimes bundle SDK v3
// only, so on AWS every $connect fails with Runtime.ImportModuleError and
// API Gateway refuses the connection with 500: the test expects that.
func TestCorpusNodeSDKv2OnNode24(t *testing.T) {
	short(t)
	needNode(t)
	endpoint := dynamotest.Endpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := startCorpus(t, stack.Config{
		Template:         "testdata/corpus/apigw-websocket-api-lambda/template.yml",
		StackName:        "v2" + letters(8),
		DynamoDBEndpoint: endpoint,
	})
	_, resp, err := websocket.Dial(ctx, p.WebSocketURL(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("connect: %v (%v), want 500 as on AWS", err, resp)
	}
	p.stop(t)
	if logs := p.output.String(); !strings.Contains(logs, "Cannot find module 'aws-sdk'") {
		t.Errorf("the log does not say the module is missing:\n%s", logs)
	}
}

// TestCorpusMappingTemplateAuthorizer is serverless-patterns'
// apigw-websocket-mapping-template-authorizer: a REQUEST authorizer that
// reads event.headers.token, a SimpleTable, and an IntegrationType AWS
// route with a request template.
//
// Its authorizer is a callback-style handler (function(event, context,
// callback)) on nodejs24.x, which Lambda's Node.js 24 runtime refuses
// (Runtime.CallbackHandlerDeprecated): on AWS the authorizer fails and
// every $connect that carries a token answers 500, which the test expects.
// One without the token header is refused with 401 before the authorizer
// runs, as API Gateway checks identity sources first.
func TestCorpusMappingTemplateAuthorizer(t *testing.T) {
	short(t)
	needNode(t)
	endpoint := dynamotest.Endpoint(t)
	p := startCorpus(t, stack.Config{
		Template:         "testdata/corpus/apigw-websocket-mapping-template-authorizer/template.yaml",
		StackName:        "mt" + letters(8),
		DynamoDBEndpoint: endpoint,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, p.WebSocketURL(), nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %v (%v), want 401", err, resp)
	}
	_, resp, err := websocket.Dial(ctx, p.WebSocketURL(), &websocket.DialOptions{HTTPHeader: http.Header{"token": {"hello"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("with the token: %v (%v), want 500 as on AWS (the nodejs24.x authorizer is callback-style)", err, resp)
	}
	p.stop(t)
	if logs := p.output.String(); !strings.Contains(logs, "CallbackHandlerDeprecated") {
		t.Errorf("the authorizer's failure is not in the log:\n%s", logs)
	}
	if notices := p.notices.String(); !strings.Contains(notices, "IntegrationType AWS") {
		t.Errorf("no not-emulated line for the AWS integration:\n%s", notices)
	}
}

// TestCorpusRequestAuthorizerAdmits runs the same serverless-patterns
// sample at the commit before its move to nodejs24.x (see SOURCES): on
// nodejs22.x, which Lambda still runs, its callback-style REQUEST
// authorizer works. A client with the right token header ("hello") is
// admitted and its $connect function stores it in the template's
// fixed-name SimpleTable (so the test runs its own dynalite); one with
// another token is refused with 401, because the authorizer answers the
// error "Unauthorized"; one without the header is refused with 401 before
// the authorizer runs. A client that leaves has its row deleted by
// $disconnect. The sendmessage route is IntegrationType AWS, which is not
// emulated: the stack says so and the test sends nothing to it.
func TestCorpusRequestAuthorizerAdmits(t *testing.T) {
	short(t)
	needNode(t)
	if _, err := os.Stat("../../.tools/node_modules/dynalite/cli.js"); err != nil {
		t.Skip("dynalite is not installed in .tools: run `make tools`")
	}
	p := startCorpus(t, stack.Config{
		Template:  "testdata/corpus/apigw-websocket-mapping-template-authorizer-nodejs22/template.yaml",
		StackName: "auth22",
		Dynalite:  &dynalite.Options{Dirs: []string{"../../.tools"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ddb := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")},
		func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.DynamoDBEndpoint()) })
	token := func(v string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"token": {v}}}
	}

	if _, resp, err := websocket.Dial(ctx, p.WebSocketURL(), nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %v (%v), want 401", err, resp)
	}
	if _, resp, err := websocket.Dial(ctx, p.WebSocketURL(), token("goodbye")); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("with a wrong token: %v (%v), want 401", err, resp)
	}
	if ids := scanIDs(ctx, t, ddb, "connection_table", "connectionId"); len(ids) != 0 {
		t.Fatalf("refused clients were stored: %v", ids)
	}

	a := dial(ctx, t, p.WebSocketURL(), token("hello"))
	b := dial(ctx, t, p.WebSocketURL(), token("hello"))
	if ids := scanIDs(ctx, t, ddb, "connection_table", "connectionId"); len(ids) != 2 {
		t.Fatalf("connections stored after two admitted $connect: %v", ids)
	}
	a.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "a's row to go", func() bool { return len(scanIDs(ctx, t, ddb, "connection_table", "connectionId")) == 1 })
	b.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "b's row to go", func() bool { return len(scanIDs(ctx, t, ddb, "connection_table", "connectionId")) == 0 })
	p.stop(t)

	logs := p.output.String()
	// The authorizer ran for the wrong token and the two right ones, never
	// for the client without the header.
	if n := strings.Count(logs, "Received event:"); n != 3 {
		t.Errorf("the authorizer ran %d times, want 3:\n%s", n, logs)
	}
	if strings.Contains(logs, "CallbackHandlerDeprecated") {
		t.Error("nodejs22.x refused the callback-style authorizer")
	}
	if notices := p.notices.String(); !strings.Contains(notices, "IntegrationType AWS") {
		t.Errorf("no not-emulated line for the AWS integration:\n%s", notices)
	}
}

// startCorpus starts a sample's stack as `streamer dev --template` runs
// it: the management API checks SigV4 signatures, as API Gateway does.
func startCorpus(t *testing.T, cfg stack.Config) *running {
	t.Helper()
	cfg.ConfigureGateway = func(c *local.Config) { c.VerifySignatures = true }
	return start(t, cfg)
}

// TestCorpusBedrockChat runs serverless-patterns'
// apigw-websocket-lambda-bedrock-sam: one nodejs24.x function stores
// connections in DynamoDB and answers each message with Amazon Bedrock
// (bedrock-runtime in eu-west-2), which the local runtime does not serve.
// The call fails at once with NotEmulated instead of hanging until the
// function's 30 s timeout, and the sample's own error path answers the
// client, as it would on AWS when Bedrock fails. The table has a fixed
// name, so the test runs its own dynalite (from .tools).
func TestCorpusBedrockChat(t *testing.T) {
	short(t)
	needNode(t)
	if _, err := os.Stat("../../.tools/node_modules/dynalite/cli.js"); err != nil {
		t.Skip("dynalite is not installed in .tools: run `make tools`")
	}
	p := startCorpus(t, stack.Config{
		Template:  "testdata/corpus/apigw-websocket-lambda-bedrock-sam/template.yaml",
		StackName: "bedrock",
		Dynalite:  &dynalite.Options{Dirs: []string{"../../.tools"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ddb := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")},
		func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.DynamoDBEndpoint()) })
	c := dial(ctx, t, p.WebSocketURL(), nil)
	if ids := scanIDs(ctx, t, ddb, "WebSocketConnections", "connectionId"); len(ids) != 1 {
		t.Fatalf("connections stored: %v", ids)
	}
	start := time.Now()
	c.send(ctx, `{"data":"Hello, Claude"}`)
	if got := c.read(ctx); got != `{"message":"Sorry, I'm having trouble connecting to the AI service. Please try again in a moment."}` {
		t.Fatalf("answer %q", got)
	}
	// Well within the function's 30 s Timeout: nothing waited on a
	// network that is not there.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the refused Bedrock call took %v", d)
	}
	c.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "the row to go", func() bool { return len(scanIDs(ctx, t, ddb, "WebSocketConnections", "connectionId")) == 0 })
	p.stop(t)
	logs := p.output.String()
	if !strings.Contains(logs, "not emulated: bedrock-runtime called by bedrock-WebSocketHandler") || !strings.Contains(logs, "NotEmulated") {
		t.Errorf("the log does not name the refused call:\n%s", logs)
	}
}

// TestCorpusBedrockStreaming runs serverless-patterns'
// apigw-websocket-api-bedrock-streaming: Python functions (python3.14,
// boto3) keep connections in DynamoDB and stream a Bedrock model's answer
// to the client through https://{domainName}/{stage}. Asking for a model
// without streaming gets the sample's own answer through the management
// API. Asking for one with streaming calls Bedrock, which the local runtime
// does not serve: the call fails at once with NotEmulated, which the
// sample does not catch, so the client gets API Gateway's "Internal server
// error" for the failed integration, as on AWS when Bedrock fails, well
// before the function's timeout. The layer and the custom resource that
// package a newer boto3 are not emulated (the host's boto3 serves).
//
// The sample's $disconnect function reads WEBSOCKETS_DDB_TABLE, but the
// template gives it TABLE_NAME: on AWS it fails at init (KeyError) and the
// connection's row stays, which the test expects.
func TestCorpusBedrockStreaming(t *testing.T) {
	short(t)
	needBoto3(t)
	endpoint := dynamotest.Endpoint(t)
	stackName := "bs" + letters(8)
	obs := &recorder{}
	p := startCorpus(t, stack.Config{
		Template:         "testdata/corpus/apigw-websocket-api-bedrock-streaming/template.yaml",
		StackName:        stackName,
		DynamoDBEndpoint: endpoint,
		Observer:         obs,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ddb := dynamotest.Client(t)
	table := stackName + "-websocket_connections"
	t.Cleanup(func() {
		ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})

	c := dial(ctx, t, p.WebSocketURL()+"?name=alice", nil)
	if ids := scanIDs(ctx, t, ddb, table, "connectionId"); len(ids) != 1 {
		t.Fatalf("connections stored: %v", ids)
	}
	c.send(ctx, `{"action":"invokeModel","prompt":"Hi","parameters":{"modelId":"ai21.j2-ultra-v1"}}`)
	if got := c.read(ctx); got != "Specified model does not support streaming response: ai21.j2-ultra-v1. Please try another model." {
		t.Fatalf("unsupported model: %q", got)
	}
	// The gateway handles a connection's messages concurrently, as API
	// Gateway does: the first invocation's return is awaited so that the
	// routes are recorded in the order the assertion below names.
	waitFor(t, "the first invokeModel to return", func() bool { return strings.Contains(strings.Join(obs.routes(), " "), "invokeModel:") })
	start := time.Now()
	c.send(ctx, `{"action":"invokeModel","prompt":"Hi","parameters":{"modelId":"anthropic.claude-v2"}}`)
	got := c.read(ctx)
	if !strings.Contains(got, `"message":"Internal server error"`) && !strings.Contains(got, `"message": "Internal server error"`) {
		t.Fatalf("streaming model: %q, want API Gateway's internal server error", got)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the refused Bedrock call took %v", d)
	}
	c.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "$disconnect", func() bool { return strings.Contains(strings.Join(obs.routes(), " "), "$disconnect:") })
	if got := strings.Join(obs.routes(), " "); got != "$connect:200 invokeModel:400 invokeModel:500 $disconnect:500" {
		t.Errorf("routes answered %s", got)
	}
	if ids := scanIDs(ctx, t, ddb, table, "connectionId"); len(ids) != 1 {
		t.Errorf("rows after the failed $disconnect: %v, want the connection's, as on AWS", ids)
	}
	p.stop(t)
	logs := p.output.String()
	if !strings.Contains(logs, "KeyError: 'WEBSOCKETS_DDB_TABLE'") {
		t.Errorf("the $disconnect function's init error is not in the log")
	}
	if !strings.Contains(logs, "not emulated: bedrock-runtime called by "+stackName+"-invoke-function") || !strings.Contains(logs, "NotEmulated") {
		t.Errorf("the log does not name the refused call:\n%s", logs)
	}
	if notices := p.notices.String(); !strings.Contains(notices, "Layers is not emulated") {
		t.Errorf("no not-emulated line for the layer:\n%s", notices)
	}
}
