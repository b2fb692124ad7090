package dynamo_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/storetest"
)

// transport is shared by every test client so TestMain can close its idle
// connections before checking for leaked goroutines.
var transport = &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}

func TestMain(m *testing.M) {
	code := m.Run()
	transport.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// endpoint returns the DynamoDB-API server the tests use, skipping the test
// when there is none (plain go test) unless STREAMER_REQUIRE_DYNAMODB=1.
func endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("STREAMER_DYNAMODB_ENDPOINT")
	if ep == "" {
		const how = "STREAMER_DYNAMODB_ENDPOINT is not set; run `make test` (or scripts/with-dynalite.sh go test ./pkg/store/dynamo) to test against dynalite"
		if os.Getenv("STREAMER_REQUIRE_DYNAMODB") == "1" {
			t.Fatal(how)
		}
		t.Skip(how)
	}
	return ep
}

// newClient returns a client for the test server. dynalite ignores
// credentials but SigV4 signing needs some.
func newClient(t testing.TB) *dynamodb.Client {
	ep := endpoint(t)
	return dynamodb.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
}

var tableSeq atomic.Int64

// freshTables creates both tables under a prefix no other test uses and
// deletes them when the test ends.
func freshTables(t testing.TB, client *dynamodb.Client) string {
	t.Helper()
	prefix := fmt.Sprintf("test-%d-%d-%d-", os.Getpid(), time.Now().UnixNano()%1e6, tableSeq.Add(1))
	if _, err := dynamo.CreateTables(t.Context(), client, prefix); err != nil {
		t.Fatalf("CreateTables: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		for _, name := range []string{dynamo.ConnectionsTable(prefix), dynamo.RequestsTable(prefix)} {
			if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
				t.Errorf("DeleteTable %s: %v", name, err)
			}
		}
	})
	return prefix
}

func TestContract(t *testing.T) {
	client := newClient(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) storetest.Stores {
		prefix := freshTables(t, client)
		// Page size 4: the connection lists cross pages, and four 300 KB
		// items also cross DynamoDB's 1 MB page limit.
		s := dynamo.New(client, dynamo.WithPrefix(prefix), dynamo.WithClock(now), dynamo.WithPageSize(4))
		return storetest.Stores{Connections: s, Requests: s}
	})
}
