package stack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/runtime/lambdart"
	"github.com/streamer-go/streamer/runtime/stack"
)

// sdkCache is a Config.NodeSDK folder filled before: the chat app's node_modules
// (which hold the SDK v3 clients) behind the marker NodeSDK leaves.
func sdkCache(t *testing.T) string {
	t.Helper()
	mods, err := filepath.Abs("../../cmd/streamer/testdata/chat/node_modules")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mods, "@aws-sdk", "client-dynamodb")); err != nil {
		t.Skipf("the chat app's node_modules are not installed (make test-deps): %v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(mods, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), []byte(strings.Join(lambdart.NodeSDKPackages, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTemplateFidelity runs testdata/fidelity through the stack with real
// Node.js and Python processes: the REQUEST authorizer reads the `token`
// header in the client's case; a Number parameter sizes a SimpleTable,
// which is created; an ES module that ships no SDK imports the bundled
// one; nodejs24.x refuses a callback handler as Lambda does; a runtime
// the machine lacks runs on the host's interpreter with a line saying
// so; Outputs are printed with the local URL.
func TestTemplateFidelity(t *testing.T) {
	short(t)
	for _, bin := range []string{"node", "python3"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	cfg := stack.Config{Template: "testdata/fidelity/template.yaml", StackName: "fidelity" + strings.ReplaceAll(dynamotest.Prefix("f"), "-", ""), NodeSDK: sdkCache(t)}
	if ep := os.Getenv(dynamotest.EndpointEnv); ep != "" {
		cfg.DynamoDBEndpoint = ep
	}
	p := start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if notices, want := p.notices.String(), "not emulated: function "+cfg.StackName+"-FuturePyFunction names python3.99; it runs on "; !strings.Contains(notices, want) {
		t.Errorf("start-up lines lack %q:\n%s", want, notices)
	}
	outputs := map[string]string{}
	for _, o := range p.Outputs() {
		outputs[o.Name] = o.Value
	}
	if outputs["WebSocketURI"] != p.WebSocketURL() || outputs["SessionsTable"] != cfg.StackName+"-Sessions" {
		t.Errorf("outputs %v, want WebSocketURI %s", outputs, p.WebSocketURL())
	}

	// "Token" is not the header the authorizer reads: API Gateway keeps
	// the client's case, so it sees no token and denies.
	if c, resp, err := websocket.Dial(ctx, p.WebSocketURL(), &websocket.DialOptions{HTTPHeader: http.Header{"Token": {"letmein"}}}); err == nil {
		c.CloseNow()
		t.Error("Token (capitalised) was accepted")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("Token (capitalised): %v (%v), want 403", err, resp)
	}
	// Go's client writes header names as given in the map.
	c := dial(ctx, t, p.WebSocketURL(), &websocket.DialOptions{HTTPHeader: http.Header{"token": {"letmein"}}})
	c.send(ctx, `{"action":"echo"}`)
	var echo map[string]string
	if err := json.Unmarshal([]byte(c.read(ctx)), &echo); err != nil {
		t.Fatal(err)
	}
	table := cfg.StackName + "-Sessions"
	if echo["sdk"] != "function" || echo["token"] != "letmein" || echo["names"] != "token" || echo["table"] != table {
		t.Errorf("echo = %v", echo)
	}

	c.send(ctx, `{"action":"py"}`)
	if got := c.read(ctx); got != "hello from python" {
		t.Errorf("python3.99 function answered %q", got)
	}

	c.send(ctx, `{"action":"callback"}`)
	if got := c.read(ctx); !strings.Contains(got, "Internal server error") {
		t.Errorf("nodejs24.x callback handler answered %q, want API Gateway's internal error", got)
	}
	if out := p.output.String(); !strings.Contains(out, "Runtime.CallbackHandlerDeprecated") {
		t.Errorf("no Runtime.CallbackHandlerDeprecated in the output:\n%s", out)
	}

	if cfg.DynamoDBEndpoint != "" {
		ddb := dynamotest.Client(t)
		out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatalf("SimpleTable %s: %v", table, err)
		}
		t.Cleanup(func() {
			ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		})
		ks := out.Table.KeySchema
		if len(ks) != 1 || *ks[0].AttributeName != "id" || *out.Table.ProvisionedThroughput.ReadCapacityUnits != 5 {
			t.Errorf("SimpleTable %s: key %v, throughput %+v", table, ks, out.Table.ProvisionedThroughput)
		}
	}
}
