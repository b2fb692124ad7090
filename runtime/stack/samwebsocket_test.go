package stack_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/coder/websocket"

	"github.com/streamer-go/streamer/runtime/dynalite"
	"github.com/streamer-go/streamer/runtime/stack"
)

// TestSAMWebSocketAPIChat runs testdata/samchat, a chat declared with
// SAM's AWS::Serverless::WebSocketApi, through its whole story with real
// Node.js functions, a dynalite of its own and signed @connections calls:
// the default stage "default"; a client without the identity source is
// refused with 401 before the authorizer runs, one the authorizer denies
// with 403; two people connect (a row each), a message reaches both with
// the name the authorizer gave (through https://{domainName}/{stage}), a
// message that is not JSON reaches $default, which answers through the
// regional hostname `!Sub ...${ChatApi}...${ChatApi.Stage}` builds; one
// leaves and the other is told. The Outputs are the local URLs.
func TestSAMWebSocketAPIChat(t *testing.T) {
	short(t)
	needNode(t)
	if _, err := os.Stat("../../.tools/node_modules/dynalite/cli.js"); err != nil {
		t.Skip("dynalite is not installed in .tools: run `make tools`")
	}
	obs := &recorder{}
	p := startCorpus(t, stack.Config{
		Template:  "testdata/samchat/template.yaml",
		StackName: "samchat",
		NodeSDK:   sdkCache(t),
		Dynalite:  &dynalite.Options{Dirs: []string{"../../.tools"}},
		Observer:  obs,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := p.WebSocketURL()
	if !strings.HasSuffix(url, "/default") {
		t.Errorf("WebSocket URL %s: want SAM's default stage, default", url)
	}
	outputs := map[string]string{}
	for _, o := range p.Outputs() {
		outputs[o.Name] = o.Value
	}
	if outputs["WebSocketURL"] != url || outputs["ConnectionsURL"] != p.ManagementEndpoint()+"/@connections" {
		t.Errorf("outputs %v, want %s and %s/@connections", outputs, url, p.ManagementEndpoint())
	}
	ddb := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")},
		func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.DynamoDBEndpoint()) })
	const table = "samchat-Connections"

	if _, resp, err := websocket.Dial(ctx, url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a name: %v (%v), want 401", err, resp)
	}
	if _, resp, err := websocket.Dial(ctx, url+"?name=mallory", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("mallory: %v (%v), want 403", err, resp)
	}
	alice := dial(ctx, t, url+"?name=alice", nil)
	bob := dial(ctx, t, url+"?name=bob", nil)
	if ids := scanIDs(ctx, t, ddb, table, "connectionId"); len(ids) != 2 {
		t.Fatalf("connections stored after two $connect: %v", ids)
	}

	alice.send(ctx, `{"action":"sendMessage","text":"hi"}`)
	for who, c := range map[string]*client{"alice": alice, "bob": bob} {
		if got := c.read(ctx); got != "alice: hi" {
			t.Fatalf("%s read %q", who, got)
		}
	}
	bob.send(ctx, "hello?")
	if got := bob.read(ctx); got != "unknown action: hello?" {
		t.Fatalf("$default answered %q", got)
	}

	bob.c.Close(websocket.StatusNormalClosure, "bye")
	if got := alice.read(ctx); got != "bob left" {
		t.Fatalf("alice read %q", got)
	}
	if ids := scanIDs(ctx, t, ddb, table, "connectionId"); len(ids) != 1 {
		t.Errorf("connections after bob left: %v", ids)
	}
	alice.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, "alice's row to go", func() bool { return len(scanIDs(ctx, t, ddb, table, "connectionId")) == 0 })
	p.stop(t)

	if got, want := strings.Join(obs.routes(), " "), "$connect:401 $connect:403 $connect:200 $connect:200 sendMessage:200 $default:200 $disconnect:200 $disconnect:200"; got != want {
		t.Errorf("routes answered %s, want %s", got, want)
	}
	if got, want := strings.Join(obs.posts(), " "), "POST:200: POST:200: POST:200: POST:200:"; got != want {
		t.Errorf("@connections calls %s, want %s", got, want)
	}
	if notices := p.notices.String(); strings.Contains(notices, "ChatApi") {
		t.Errorf("start-up lines name the API as not emulated:\n%s", notices)
	}
}
