package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/awslambda"
	"github.com/streamer-go/streamer/pkg/connection/connectiontest"
	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/memory"
	"github.com/streamer-go/streamer/pkg/streamer"
)

func TestAttributeValuesOfRealStreamEvent(t *testing.T) {
	ev := loadEvent[events.DynamoDBEvent](t, "dynamodb-event.json")
	got, err := awslambda.AttributeValues(ev.Records[1].Change.NewImage)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]types.AttributeValue{
		"val":            &types.AttributeValueMemberS{Value: "data"},
		"key":            &types.AttributeValueMemberS{Value: "binary"},
		"asdf1":          &types.AttributeValueMemberB{Value: []byte{0, 1, 42, 65}},
		"b2":             &types.AttributeValueMemberB{Value: []byte{0xb5, 0xeb, 0x2d}},
		"asdf2":          &types.AttributeValueMemberBS{Value: [][]byte{{0, 1, 42, 65}, {65, 42, 1, 0}, {0, 1, 42, 65}}},
		"Binary":         &types.AttributeValueMemberB{Value: []byte{0, 1, 42, 65}},
		"Boolean":        &types.AttributeValueMemberBOOL{Value: true},
		"BinarySet":      &types.AttributeValueMemberBS{Value: [][]byte{{0, 1, 42, 65}, {0, 1, 42, 65}}},
		"List":           &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "Cookies"}, &types.AttributeValueMemberS{Value: "Coffee"}, &types.AttributeValueMemberN{Value: "3.14159"}}},
		"Map":            &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"Name": &types.AttributeValueMemberS{Value: "Joe"}, "Age": &types.AttributeValueMemberN{Value: "35"}}},
		"FloatNumber":    &types.AttributeValueMemberN{Value: "123.45"},
		"IntegerNumber":  &types.AttributeValueMemberN{Value: "123"},
		"NumberSet":      &types.AttributeValueMemberNS{Value: []string{"1234", "567.8"}},
		"Null":           &types.AttributeValueMemberNULL{Value: true},
		"String":         &types.AttributeValueMemberS{Value: "Hello"},
		"StringSet":      &types.AttributeValueMemberSS{Value: []string{"Giraffe", "Zebra"}},
		"EmptyStringSet": &types.AttributeValueMemberSS{Value: []string{}},
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if !reflect.DeepEqual(got[k], want[k]) {
				t.Errorf("%s: got %#v, want %#v", k, got[k], want[k])
			}
		}
		t.Fatal("conversion differs")
	}
}

func TestSampleRecordsThatAreNotRequestsAreSkipped(t *testing.T) {
	ev := loadEvent[events.DynamoDBEvent](t, "dynamodb-event.json")
	for _, rec := range ev.Records {
		if _, pending, err := awslambda.PendingRequest(rec); err == nil || pending {
			t.Fatalf("a non-request image was accepted: pending=%v err=%v", pending, err)
		}
	}
	resp, err := awslambda.StreamHandler(streamer.NewProcessor(memory.New(), &connectiontest.Recorder{}, streamer.NewActions()))(t.Context(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v %v", resp, err)
	}
}

// itemCapture is a dynamo.Client that keeps the items the DynamoDB store
// writes, so a test sees exactly what the store puts in the table, and
// hence what the table's stream carries.
type itemCapture struct {
	dynamo.Client
	items []map[string]types.AttributeValue
}

func (c *itemCapture) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.items = append(c.items, in.Item)
	return &dynamodb.PutItemOutput{}, nil
}

// streamJSON renders an SDK attribute value in the stream's JSON form.
func streamJSON(av types.AttributeValue) any {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return map[string]any{"S": v.Value}
	case *types.AttributeValueMemberN:
		return map[string]any{"N": v.Value}
	case *types.AttributeValueMemberB:
		return map[string]any{"B": v.Value}
	case *types.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": v.Value}
	case *types.AttributeValueMemberNULL:
		return map[string]any{"NULL": true}
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	case *types.AttributeValueMemberBS:
		return map[string]any{"BS": v.Value}
	case *types.AttributeValueMemberL:
		out := make([]any, len(v.Value))
		for i, e := range v.Value {
			out[i] = streamJSON(e)
		}
		return map[string]any{"L": out}
	case *types.AttributeValueMemberM:
		return map[string]any{"M": imageJSON(v.Value)}
	}
	panic(fmt.Sprintf("unknown attribute type %T", av))
}

func imageJSON(item map[string]types.AttributeValue) map[string]any {
	out := map[string]any{}
	for k, v := range item {
		out[k] = streamJSON(v)
	}
	return out
}

// streamRecord is one stream record in the JSON Lambda receives, shaped
// like testdata/aws-events/dynamodb-event.json.
func streamRecord(eventName, seq string, newImage map[string]types.AttributeValue) map[string]any {
	key := &types.AttributeValueMemberS{Value: "r-removed"}
	if newImage != nil {
		key = newImage[dynamo.AttrRequestID].(*types.AttributeValueMemberS)
	}
	change := map[string]any{
		"ApproximateCreationDateTime": 1480642020,
		"Keys":                        imageJSON(map[string]types.AttributeValue{dynamo.AttrRequestID: key}),
		"SequenceNumber":              seq,
		"SizeBytes":                   100,
		"StreamViewType":              "NEW_AND_OLD_IMAGES",
	}
	if newImage != nil {
		change["NewImage"] = imageJSON(newImage)
	}
	return map[string]any{
		"eventID": "e-" + seq, "eventName": eventName, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
		"awsRegion": "us-east-1", "dynamodb": change,
		"eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/streamer-requests/stream/2016-12-01T00:00:00.000",
	}
}

func decodeEvent(t *testing.T, records ...map[string]any) events.DynamoDBEvent {
	t.Helper()
	data, err := json.Marshal(map[string]any{"Records": records})
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// failingClaims is a request store whose Claim fails for one request, as a
// throttled table would.
type failingClaims struct {
	store.RequestStore
	id string
}

func (f failingClaims) Claim(ctx context.Context, id, owner string, lease time.Duration) (*store.AsyncRequest, error) {
	if id == f.id {
		return nil, errors.New("ProvisionedThroughputExceededException")
	}
	return f.RequestStore.Claim(ctx, id, owner, lease)
}

func TestStreamHandlerRunsPendingRequestsFromRealItems(t *testing.T) {
	mem := memory.New()
	capture := &itemCapture{}
	ddb := dynamo.New(capture)
	now := time.Now()
	newRequest := func(id string) *store.AsyncRequest {
		return &store.AsyncRequest{RequestID: id, ClientRequestID: "c-" + id, ConnectionID: "conn", UserID: "alice",
			Action: "work", Payload: json.RawMessage(`{"n":1}`), TTL: now.Add(time.Hour).Unix()}
	}
	for _, id := range []string{"r-ok", "r-dup", "r-broken"} {
		// The same request goes into the memory store the processor uses
		// and through the DynamoDB store's encoding into the stream event.
		if err := mem.Enqueue(t.Context(), newRequest(id)); err != nil {
			t.Fatal(err)
		}
		if err := ddb.Enqueue(t.Context(), newRequest(id)); err != nil {
			t.Fatal(err)
		}
	}
	okItem, dupItem, brokenItem := capture.items[0], capture.items[1], capture.items[2]
	if s, ok := okItem[dynamo.AttrStatus].(*types.AttributeValueMemberS); !ok || s.Value != "PENDING" {
		t.Fatalf("real item has status %#v", okItem[dynamo.AttrStatus])
	}
	// A progress write: status PROCESSING in the new image.
	progressItem := map[string]types.AttributeValue{}
	for k, v := range dupItem {
		progressItem[k] = v
	}
	progressItem[dynamo.AttrStatus] = &types.AttributeValueMemberS{Value: string(store.StatusProcessing)}
	progressItem[dynamo.AttrProgress] = &types.AttributeValueMemberN{Value: "40"}

	var runs atomic.Int32
	rec := &connectiontest.Recorder{}
	r := streamer.NewRouter(failingClaims{mem, "r-broken"}, rec)
	r.HandleAsyncFunc("work", func(_ context.Context, req *streamer.Request, p progress.Reporter) (any, error) {
		runs.Add(1)
		return map[string]string{"ran": req.RequestID}, nil
	})
	flusher := &countingFlusher{}
	h := awslambda.StreamHandler(streamer.NewProcessor(failingClaims{mem, "r-broken"}, rec, r.Actions()), awslambda.WithFlusher(flusher))

	ev := decodeEvent(t,
		streamRecord("INSERT", "100", okItem),
		streamRecord("INSERT", "101", dupItem),
		streamRecord("MODIFY", "102", progressItem), // progress: no work
		streamRecord("MODIFY", "103", dupItem),      // same request again in the batch
		streamRecord("INSERT", "104", brokenItem),   // store fails: batch item failure
		streamRecord("REMOVE", "105", nil),          // TTL deletion: no work
		streamRecord("MODIFY", "106", okItem),       // duplicate delivery
	)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // like Lambda's deadline
	defer cancel()
	resp, err := h(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "104" {
		t.Fatalf("failures %+v, want only 104", resp.BatchItemFailures)
	}
	if runs.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2 (r-ok and r-dup once each)", runs.Load())
	}
	for _, id := range []string{"r-ok", "r-dup"} {
		got, err := mem.GetRequest(t.Context(), id)
		if err != nil || got.Status != store.StatusCompleted || string(got.Result) != `{"ran":"`+id+`"}` {
			t.Fatalf("%s: %+v %v", id, got, err)
		}
	}
	if got, _ := mem.GetRequest(t.Context(), "r-broken"); got.Status != store.StatusPending {
		t.Fatalf("r-broken is %s", got.Status)
	}
	if flusher.n.Load() != 1 {
		t.Fatalf("flushed %d times", flusher.n.Load())
	}
}

func TestStreamRetriesStopAtTheInvocationDeadline(t *testing.T) {
	mem := memory.New()
	capture := &itemCapture{}
	req := &store.AsyncRequest{RequestID: "r-flaky", ClientRequestID: "c", ConnectionID: "conn", UserID: "alice", Action: "flaky", TTL: time.Now().Add(time.Hour).Unix()}
	if err := mem.Enqueue(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := dynamo.New(capture).Enqueue(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	r := streamer.NewRouter(mem, &connectiontest.Recorder{})
	r.HandleAsyncFunc("flaky", func(context.Context, *streamer.Request, progress.Reporter) (any, error) {
		calls.Add(1)
		return nil, streamer.Retryable(errors.New("upstream throttled"))
	})
	// An invocation with 3 s left cannot fit a backoff (up to 1 s) plus the
	// processor's 5 s margin for its final writes: the handler runs once and
	// the request is left PENDING for the stream to deliver again.
	h := awslambda.StreamHandler(streamer.NewProcessor(mem, &connectiontest.Recorder{}, r.Actions(), streamer.WithRetryBackoff(time.Second, time.Second), streamer.WithMaxAttempts(10)))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	resp, err := h(ctx, decodeEvent(t, streamRecord("INSERT", "1", capture.items[0])))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v %v", resp, err)
	}
	got, _ := mem.GetRequest(t.Context(), "r-flaky")
	if calls.Load() != 1 || got.Status != store.StatusPending || got.Attempts != 1 {
		t.Fatalf("calls %d, stored %+v", calls.Load(), got)
	}
}

// A handler still running near the end of the invocation is cut short
// before Lambda's deadline, not at it, so that its request is put back in
// the queue (and the flusher runs) while the process may still work.
func TestStreamHandlerLeavesAReserveBeforeTheDeadline(t *testing.T) {
	mem := memory.New()
	capture := &itemCapture{}
	req := &store.AsyncRequest{RequestID: "r-long", ClientRequestID: "c", ConnectionID: "conn", UserID: "alice", Action: "long", TTL: time.Now().Add(time.Hour).Unix()}
	if err := mem.Enqueue(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if err := dynamo.New(capture).Enqueue(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	r := streamer.NewRouter(mem, &connectiontest.Recorder{})
	handlerDeadline := make(chan time.Time, 1)
	r.HandleAsyncFunc("long", func(ctx context.Context, _ *streamer.Request, _ progress.Reporter) (any, error) {
		d, _ := ctx.Deadline()
		handlerDeadline <- d
		<-ctx.Done() // runs until it is cut short
		return nil, ctx.Err()
	})
	flusher := &countingFlusher{}
	h := awslambda.StreamHandler(streamer.NewProcessor(mem, &connectiontest.Recorder{}, r.Actions()), awslambda.WithFlusher(flusher))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	invocationDeadline, _ := ctx.Deadline()
	resp, err := h(ctx, decodeEvent(t, streamRecord("INSERT", "1", capture.items[0])))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("resp %+v %v", resp, err)
	}
	// A quarter of the remaining budget is kept back; without the
	// reserve the handler would see the invocation's deadline itself.
	if d := <-handlerDeadline; !d.Before(invocationDeadline) {
		t.Fatalf("handler deadline %v is not before the invocation's %v less the reserve", d, invocationDeadline)
	}
	got, _ := mem.GetRequest(t.Context(), "r-long")
	if got.Status != store.StatusPending || got.Attempts != 1 {
		t.Fatalf("cut-short request stored %+v, want PENDING for the next delivery", got)
	}
	if flusher.n.Load() != 1 {
		t.Fatalf("flushed %d times", flusher.n.Load())
	}
}
