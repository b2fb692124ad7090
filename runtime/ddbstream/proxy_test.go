package ddbstream_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/goleak"

	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
	"github.com/streamer-go/streamer/runtime/ddbstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// proxied starts a proxy in front of dynalite with a stream on a fresh
// table and returns an SDK client talking to the proxy.
func proxied(t *testing.T, viewType string) (*dynamodb.Client, *ddbstream.Stream, string) {
	t.Helper()
	upstream := dynamotest.Endpoint(t)
	table := dynamotest.Prefix("stream") + "items"
	st, err := ddbstream.NewStream(table, viewType, "arn:aws:dynamodb:us-east-1:123456789012:table/"+table+"/stream/local", "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	p := ddbstream.NewProxy(upstream, []*ddbstream.Stream{st}, nil)
	srv := httptest.NewServer(p)
	transport := &http.Transport{}
	t.Cleanup(func() { transport.CloseIdleConnections(); srv.Close(); p.Close() })
	client := dynamodb.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	ctx := context.Background()
	_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return client, st, table
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func readAll(t *testing.T, st *ddbstream.Stream, from int64) []events.DynamoDBEventRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var out []events.DynamoDBEventRecord
	for {
		recs, next, err := st.Read(ctx, from, 100)
		if err != nil {
			return out
		}
		out = append(out, recs...)
		from = next
	}
}

func TestProxyRecordsWrites(t *testing.T) {
	client, st, table := proxied(t, ddbstream.NewAndOldImages)
	ctx := context.Background()
	start := st.Latest()
	tn := aws.String(table)
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tn, Item: map[string]types.AttributeValue{"id": s("a"), "v": s("1")}})
	mustDo(err)
	_, err = client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: tn, Key: map[string]types.AttributeValue{"id": s("a")},
		UpdateExpression: aws.String("SET v = :v"), ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("2")}})
	mustDo(err)
	// Writing the same value changes nothing: no record.
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tn, Item: map[string]types.AttributeValue{"id": s("a"), "v": s("2")}})
	mustDo(err)
	// A failed conditional write changes nothing either.
	_, err = client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tn, Item: map[string]types.AttributeValue{"id": s("a"), "v": s("3")},
		ConditionExpression: aws.String("attribute_not_exists(id)")})
	if err == nil {
		t.Fatal("conditional put succeeded")
	}
	_, err = client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: {
		{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"id": s("b"), "v": s("x")}}},
		{DeleteRequest: &types.DeleteRequest{Key: map[string]types.AttributeValue{"id": s("a")}}},
	}}})
	mustDo(err)
	_, err = client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: tn, Key: map[string]types.AttributeValue{"id": s("nothing")}})
	mustDo(err)

	recs := readAll(t, st, start)
	type rec struct{ name, id, oldV, newV string }
	want := []rec{{"INSERT", "a", "", "1"}, {"MODIFY", "a", "1", "2"}, {"INSERT", "b", "", "x"}, {"REMOVE", "a", "2", ""}}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, r := range recs {
		got := rec{r.EventName, r.Change.Keys["id"].String(), "", ""}
		if v, ok := r.Change.OldImage["v"]; ok {
			got.oldV = v.String()
		}
		if v, ok := r.Change.NewImage["v"]; ok {
			got.newV = v.String()
		}
		if got != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, got, want[i])
		}
		if r.EventSource != "aws:dynamodb" || r.Change.StreamViewType != ddbstream.NewAndOldImages || r.EventSourceArn != st.ARN {
			t.Errorf("record %d = %+v", i, r)
		}
		if i > 0 && r.Change.SequenceNumber <= recs[i-1].Change.SequenceNumber {
			t.Errorf("sequence numbers out of order: %s after %s", r.Change.SequenceNumber, recs[i-1].Change.SequenceNumber)
		}
	}
}

func TestProxyKeysOnly(t *testing.T) {
	client, st, table := proxied(t, ddbstream.KeysOnly)
	start := st.Latest()
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{"id": s("k"), "v": s("1")}}); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, st, start)
	if len(recs) != 1 || recs[0].Change.NewImage != nil || recs[0].Change.Keys["id"].String() != "k" {
		t.Fatalf("records %+v", recs)
	}
}
