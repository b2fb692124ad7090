package dynamotest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
)

// The environment variables the tests read.
const (
	// EndpointEnv names the DynamoDB-API server's URL.
	EndpointEnv = "STREAMER_DYNAMODB_ENDPOINT"
	// RequireEnv, set to "1", makes a missing server a test failure
	// instead of a skip.
	RequireEnv = "STREAMER_REQUIRE_DYNAMODB"
)

// missing is the one message a test without a server gives.
const missing = EndpointEnv + " is not set; run `make test` or scripts/with-dynalite.sh to test against dynalite"

// Endpoint returns the URL of the DynamoDB-API server the tests use. Without
// one it skips t (b.Skip for a benchmark), or fails it when
// STREAMER_REQUIRE_DYNAMODB=1, so that a run that promised DynamoDB cannot
// pass by skipping.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv(EndpointEnv)
	if ep == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(RequireEnv + "=1 but " + missing)
		}
		t.Skip(missing)
	}
	return ep
}

// Client returns a client for the server of [Endpoint] (skipping or failing
// t as it does). dynalite ignores credentials, but SigV4 signing needs some,
// so they are static. The client has a pooled transport of its own whose
// idle keep-alive connections are closed when t ends, so that goleak in the
// caller's TestMain finds no connection goroutines; register cleanups that
// still use the client after calling Client, as they then run first.
//
// The client's retryer is the SDK's standard one without its client-wide
// retry quota: the parallel contract cases share the client, and a burst
// of 100 concurrent calls that meets transient connection errors (a loaded
// server resetting connections) would drain the quota's 500 tokens at 10
// a retry and fail calls that one more attempt would carry. Each call
// still has the standard attempts and backoff.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	ep := Endpoint(t)
	transport := &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(transport.CloseIdleConnections)
	return dynamodb.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  &http.Client{Transport: transport},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
		},
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
}

var seq atomic.Int64

// Prefix returns a table prefix that starts with hint and that no other
// test (in this process or another running at the same time) uses. It
// creates nothing: it is for tests whose code under test creates the
// tables itself; others call [Tables].
func Prefix(hint string) string {
	return fmt.Sprintf("%s-%d-%d-%d-", hint, os.Getpid(), time.Now().UnixNano()%1e9, seq.Add(1))
}

// TableDeleter is what [Tables] needs besides what
// [dynamo.CreateTables] does: *dynamodb.Client has both.
type TableDeleter interface {
	dynamo.TableClient
	DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
}

// Tables creates both of the store's tables with [dynamo.CreateTables]
// under a fresh [Prefix] starting with prefixHint, and deletes them when t
// ends (a failed delete fails t). It returns the prefix, for
// [dynamo.WithPrefix].
func Tables(t testing.TB, client TableDeleter, prefixHint string) (prefix string) {
	t.Helper()
	prefix = Prefix(prefixHint)
	if _, err := dynamo.CreateTables(t.Context(), client, prefix); err != nil {
		t.Fatalf("dynamotest: CreateTables %s: %v", prefix, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx := context.WithoutCancel(t.Context())
		for _, name := range []string{dynamo.ConnectionsTable(prefix), dynamo.RequestsTable(prefix)} {
			if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
				t.Errorf("dynamotest: DeleteTable %s: %v", name, err)
			}
		}
	})
	return prefix
}
