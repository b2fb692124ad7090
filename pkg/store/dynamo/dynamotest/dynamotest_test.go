package dynamotest_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// outcomeTB records how a helper ended t instead of ending the real test.
type outcomeTB struct {
	testing.TB
	how, msg string
}

func (o *outcomeTB) Helper() {}

func (o *outcomeTB) Skip(args ...any) {
	o.how, o.msg = "skip", fmt.Sprint(args...)
	runtime.Goexit()
}

func (o *outcomeTB) Fatal(args ...any) {
	o.how, o.msg = "fatal", fmt.Sprint(args...)
	runtime.Goexit()
}

// endpointOutcome runs Endpoint on a recording TB in a goroutine of its
// own, since Skip and Fatal end the calling goroutine.
func endpointOutcome(t *testing.T) (ep string, o *outcomeTB) {
	o = &outcomeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ep = dynamotest.Endpoint(o)
	}()
	<-done
	return ep, o
}

func TestEndpointWithoutServer(t *testing.T) {
	t.Setenv(dynamotest.EndpointEnv, "")
	t.Setenv(dynamotest.RequireEnv, "")
	if _, o := endpointOutcome(t); o.how != "skip" || !strings.Contains(o.msg, "make test") || !strings.Contains(o.msg, "scripts/with-dynalite.sh") {
		t.Errorf("no endpoint: %s %q, want a skip naming make test and scripts/with-dynalite.sh", o.how, o.msg)
	}
	t.Setenv(dynamotest.RequireEnv, "1")
	if _, o := endpointOutcome(t); o.how != "fatal" || !strings.Contains(o.msg, dynamotest.EndpointEnv) {
		t.Errorf("no endpoint, required: %s %q, want a failure naming %s", o.how, o.msg, dynamotest.EndpointEnv)
	}
	t.Setenv(dynamotest.EndpointEnv, "http://127.0.0.1:1")
	if ep, o := endpointOutcome(t); o.how != "" || ep != "http://127.0.0.1:1" {
		t.Errorf("endpoint set: %s %q, returned %q", o.how, o.msg, ep)
	}
}

func TestPrefixIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		p := dynamotest.Prefix("x")
		if !strings.HasPrefix(p, "x-") || seen[p] {
			t.Fatalf("prefix %q: repeated or not starting with the hint", p)
		}
		seen[p] = true
	}
}

// Tables creates the tables, and they are gone once the test that asked
// for them has ended.
func TestTablesAreDeletedAtCleanup(t *testing.T) {
	client := dynamotest.Client(t)
	var prefix string
	t.Run("owner", func(t *testing.T) {
		prefix = dynamotest.Tables(t, client, "dynamotest")
		for _, name := range []string{dynamo.ConnectionsTable(prefix), dynamo.RequestsTable(prefix)} {
			if _, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
				t.Errorf("DescribeTable %s: %v", name, err)
			}
		}
	})
	for _, name := range []string{dynamo.ConnectionsTable(prefix), dynamo.RequestsTable(prefix)} {
		_, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if nf := (*types.ResourceNotFoundException)(nil); !errors.As(err, &nf) {
			t.Errorf("DescribeTable %s after cleanup: %v, want ResourceNotFoundException", name, err)
		}
	}
}
