package awslambda_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// dynamoClient returns a client for the DynamoDB-API test server (dynalite)
// and fresh tables, or skips without one (unless STREAMER_REQUIRE_DYNAMODB=1).
func dynamoClient(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	client := dynamotest.Client(t)
	return client, dynamotest.Tables(t, client, "lambda")
}

// rawItem reads a request exactly as the table holds it: what a stream
// record's NewImage carries.
func rawItem(t *testing.T, client *dynamodb.Client, prefix, requestID string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName:      aws.String(dynamo.RequestsTable(prefix)),
		Key:            map[string]types.AttributeValue{dynamo.AttrRequestID: &types.AttributeValueMemberS{Value: requestID}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		t.Fatalf("GetItem %s: %v", requestID, err)
	}
	return out.Item
}

func TestStreamHandlerOnDynamoDBItems(t *testing.T) {
	client, prefix := dynamoClient(t)
	st := dynamo.New(client, dynamo.WithPrefix(prefix))
	rec := &connectiontest.Recorder{}
	router := streamer.NewRouter(st, rec, streamer.WithConnectionStore(st))
	var runs atomic.Int32
	router.HandleAsyncFunc("work", func(_ context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		runs.Add(1)
		_ = p.Report(100, "done")
		return map[string]string{"user": req.Identity.UserID}, nil
	})
	if err := st.Save(t.Context(), &store.Connection{ConnectionID: "c1", UserID: "alice", TenantID: "acme", TTL: time.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	// The router queues the request in the real table (the $default Lambda).
	if err := router.HandleMessage(t.Context(), streamer.Message{ConnectionID: "c1", Body: []byte(`{"type":"request","id":"j1","action":"work","payload":{"n":1}}`)}); err != nil {
		t.Fatal(err)
	}
	var ack struct {
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(rec.Sent()[0].Data, &ack); err != nil || ack.RequestID == "" {
		t.Fatalf("ack %s", rec.Sent()[0].Data)
	}
	inserted := rawItem(t, client, prefix, ack.RequestID)

	// The stream Lambda gets the INSERT record.
	h := awslambda.StreamHandler(streamer.NewProcessor(st, rec, router.Actions(), streamer.WithProcessorConnections(st)))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := h(ctx, decodeEvent(t, streamRecord("INSERT", "1", inserted)))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v %v", resp, err)
	}
	got, err := st.GetRequest(t.Context(), ack.RequestID)
	if err != nil || got.Status != store.StatusCompleted || string(got.Result) != `{"user":"alice"}` {
		t.Fatalf("stored %+v %v", got, err)
	}
	// The writes the processor made stream as MODIFY records; none of them
	// triggers work, and a redelivered INSERT does not run twice.
	completed := rawItem(t, client, prefix, ack.RequestID)
	resp, err = h(ctx, decodeEvent(t, streamRecord("MODIFY", "2", completed), streamRecord("INSERT", "1", inserted)))
	if err != nil || len(resp.BatchItemFailures) != 0 || runs.Load() != 1 {
		t.Fatalf("after redelivery: runs=%d resp=%+v err=%v", runs.Load(), resp, err)
	}
	last := rec.Sent()[len(rec.Sent())-1]
	if string(last.Data) != `{"v":1,"type":"complete","request_id":"`+ack.RequestID+`","result":{"user":"alice"}}` {
		t.Fatalf("last message %s", last.Data)
	}
}
