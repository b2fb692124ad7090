package dynamo_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestContract(t *testing.T) {
	client := dynamotest.Client(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) storetest.Stores {
		prefix := dynamotest.Tables(t, client, "test")
		// Page size 4: the connection lists cross pages, and four 300 KB
		// items also cross DynamoDB's 1 MB page limit.
		s := dynamo.New(client, dynamo.WithPrefix(prefix), dynamo.WithClock(now), dynamo.WithPageSize(4))
		return storetest.Stores{Connections: s, Requests: s}
	})
}
