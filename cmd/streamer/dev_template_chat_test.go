package main

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

// TestTemplateNodeChatSample runs testdata/chat, a Node.js app written as
// AWS's simple-websockets-chat-app sample is (AWS SDK v3, the management
// endpoint built from domainName and stage, over TLS), with dynalite:
// three clients chat; one is killed without a close and a connection
// whose $disconnect never came (a row for a gone connection) answers 410
// to the next message, which removes it.
func TestTemplateNodeChatSample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	endpoint := dynamotest.Endpoint(t)
	if _, err := os.Stat("testdata/chat/node_modules/@aws-sdk/client-apigatewaymanagementapi"); err != nil {
		if os.Getenv(dynamotest.RequireEnv) == "1" {
			t.Fatal("testdata/chat/node_modules is missing: run `make test-deps` (make test does)")
		}
		t.Skip("testdata/chat/node_modules is missing: run `make test-deps`")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	bin := buildBinary(t)
	table := dynamotest.Prefix("chat") + "connections"
	p := startDevProcess(t, bin, "--template", "testdata/chat/template.yaml", "--dynamodb-endpoint", endpoint, "--no-watch",
		"--parameter-overrides", "TableName="+table)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ddb := dynamotest.Client(t)
	t.Cleanup(func() {
		ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})

	rows := func() []string {
		t.Helper()
		out, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range out.Items {
			ids = append(ids, it["connectionId"].(*types.AttributeValueMemberS).Value)
		}
		sort.Strings(ids)
		return ids
	}
	a := dialDev(ctx, t, p.wsURL, nil)
	b := dialDev(ctx, t, p.wsURL, nil)
	c := dialDev(ctx, t, p.wsURL, nil)
	if n := len(rows()); n != 3 {
		t.Fatalf("%d connections stored after three $connect, want 3", n)
	}
	expect := func(who string, cl *client, want string) {
		t.Helper()
		_, msg, err := cl.c.Read(ctx)
		if err != nil || string(msg) != want {
			t.Fatalf("%s read %q, %v; want %q", who, msg, err, want)
		}
	}
	a.send(ctx, `{"action":"sendmessage","data":"hello from a"}`)
	expect("a", a, "hello from a")
	expect("b", b, "hello from a")
	expect("c", c, "hello from a")
	before := rows()

	// c dies without a close; a row whose connection is long gone (its
	// $disconnect never came) sits in the table too.
	c.c.CloseNow()
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{"connectionId": &types.AttributeValueMemberS{Value: "R2hvc3RHaG9zdA="}}}); err != nil {
		t.Fatal(err)
	}
	b.send(ctx, `{"action":"sendmessage","data":"who is there?"}`)
	expect("a", a, "who is there?")
	expect("b", b, "who is there?")
	// The ghost answered 410 and sendmessage deleted it; c is gone by its
	// $disconnect or by its own 410, whichever came first.
	var left []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left = rows(); len(left) == 2 {
			break
		}
	}
	if len(left) != 2 || strings.Contains(strings.Join(left, ","), "R2hvc3RHaG9zdA=") {
		t.Fatalf("connections left %v (before: %v), want only a's and b's", left, before)
	}
	p.stop(t)
	if logs := p.stderr.String(); !strings.Contains(logs, "Found stale connection, deleting R2hvc3RHaG9zdA=") {
		t.Errorf("sendmessage did not log the 410 of the stale connection")
	}
}
