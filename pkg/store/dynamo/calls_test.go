package dynamo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/store/dynamo/dynamotest"
)

type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newCountingStore(t *testing.T, opts ...dynamo.Option) (*dynamo.Store, *dynamotest.Counter, *manualClock, *dynamodb.Client) {
	t.Helper()
	client := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, client, "test")
	counter := dynamotest.NewCounter(client)
	clock := &manualClock{now: time.Now().UTC().Truncate(time.Second)}
	opts = append([]dynamo.Option{dynamo.WithPrefix(prefix), dynamo.WithClock(clock.Now)}, opts...)
	return dynamo.New(counter, opts...), counter, clock, client
}

// TestCallsPerOperation pins how many DynamoDB calls each store operation
// costs; docs/PERFORMANCE.md quotes this table.
func TestCallsPerOperation(t *testing.T) {
	t.Parallel()
	s, counter, clock, _ := newCountingStore(t, dynamo.WithPageSize(10))
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	expect := func(op string, want map[string]int) {
		t.Helper()
		if got := counter.Take(); !maps.Equal(got, want) {
			t.Errorf("%s: calls %v, want %v", op, got, want)
		}
	}
	req := func(id string) *store.AsyncRequest {
		return &store.AsyncRequest{RequestID: id, ConnectionID: "c-1", UserID: "u-1", Action: "a", Payload: json.RawMessage(`{}`)}
	}

	must(s.Save(ctx, &store.Connection{ConnectionID: "c-1", UserID: "u-1", TenantID: "t-1", ConnectedAt: clock.Now()}))
	expect("Save", map[string]int{"PutItem": 1})
	_, err := s.Get(ctx, "c-1")
	must(err)
	expect("Get", map[string]int{"GetItem": 1})
	must(s.UpdateLastPing(ctx, "c-1", clock.Now()))
	expect("UpdateLastPing", map[string]int{"UpdateItem": 1})
	_, err = s.ListByUser(ctx, "u-1")
	must(err)
	expect("ListByUser (1 connection)", map[string]int{"Query": 1})

	must(s.Enqueue(ctx, req("r-1")))
	expect("Enqueue", map[string]int{"PutItem": 1})
	_, err = s.GetRequest(ctx, "r-1")
	must(err)
	expect("GetRequest", map[string]int{"GetItem": 1})
	_, err = s.Claim(ctx, "r-1", "w1", time.Minute)
	must(err)
	expect("Claim PENDING", map[string]int{"UpdateItem": 1})
	_, err = s.Claim(ctx, "r-1", "w2", time.Minute)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second Claim: %v", err)
	}
	expect("Claim lost (ErrConflict)", map[string]int{"UpdateItem": 1, "GetItem": 1})
	must(s.UpdateProgress(ctx, "r-1", "w1", 50, "half"))
	expect("UpdateProgress", map[string]int{"UpdateItem": 1})
	must(s.RenewLease(ctx, "r-1", "w1", time.Minute))
	expect("RenewLease", map[string]int{"UpdateItem": 1})
	clock.Advance(2 * time.Minute)
	_, err = s.Claim(ctx, "r-1", "w2", time.Minute)
	must(err)
	expect("Claim take-over of an expired lease", map[string]int{"UpdateItem": 2, "GetItem": 1})
	_, err = s.Requeue(ctx, "r-1", "w2", store.RequestError{Code: "INTERNAL"}, 3)
	must(err)
	expect("Requeue with attempts left", map[string]int{"UpdateItem": 1})
	_, err = s.Claim(ctx, "r-1", "w3", time.Minute)
	must(err)
	counter.Take()
	_, err = s.Requeue(ctx, "r-1", "w3", store.RequestError{Code: "INTERNAL"}, 3)
	must(err)
	expect("Requeue of the last attempt (to FAILED)", map[string]int{"UpdateItem": 2, "GetItem": 1})

	must(s.Enqueue(ctx, req("r-2")))
	_, err = s.Claim(ctx, "r-2", "w1", time.Minute)
	must(err)
	counter.Take()
	_, err = s.Complete(ctx, "r-2", "w1", json.RawMessage(`{"ok":true}`))
	must(err)
	expect("Complete", map[string]int{"UpdateItem": 1})

	must(s.Enqueue(ctx, req("r-3")))
	_, err = s.Claim(ctx, "r-3", "w1", time.Minute)
	must(err)
	counter.Take()
	_, err = s.Fail(ctx, "r-3", "w1", store.RequestError{Code: "INTERNAL", Message: "x"})
	must(err)
	expect("Fail", map[string]int{"UpdateItem": 1})

	must(s.Enqueue(ctx, req("r-4")))
	counter.Take()
	_, err = s.Cancel(ctx, "r-4")
	must(err)
	expect("Cancel", map[string]int{"UpdateItem": 1})
	err = s.UpdateProgress(ctx, "r-4", "w1", 10, "")
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateProgress after Cancel: %v", err)
	}
	expect("UpdateProgress on CANCELLED (ErrConflict)", map[string]int{"UpdateItem": 1, "GetItem": 1})

	_, _, err = s.ListRequestsByConnection(ctx, "c-1", 10, "")
	must(err)
	expect("ListRequestsByConnection (one page)", map[string]int{"Query": 1})

	_, err = s.DeleteStale(ctx, clock.Now().Add(time.Hour))
	must(err)
	expect("DeleteStale (1 stale of 1)", map[string]int{"Scan": 1, "DeleteItem": 1})
}

// TestErrorsWrapSDK checks that the sentinel and the SDK error are both in
// the chain, so callers may branch on either.
func TestErrorsWrapSDK(t *testing.T) {
	t.Parallel()
	s, _, _, _ := newCountingStore(t)
	ctx := t.Context()
	r := &store.AsyncRequest{RequestID: "r-1", ConnectionID: "c-1"}
	if err := s.Enqueue(ctx, r); err != nil {
		t.Fatal(err)
	}
	var ccf *types.ConditionalCheckFailedException

	err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: "r-1", ConnectionID: "c-1"})
	if !errors.Is(err, store.ErrAlreadyExists) || !errors.As(err, &ccf) {
		t.Errorf("duplicate Enqueue: %v; want ErrAlreadyExists wrapping ConditionalCheckFailedException", err)
	}
	if _, err := s.Claim(ctx, "r-1", "w1", time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = s.Claim(ctx, "r-1", "w2", time.Minute)
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ccf) {
		t.Errorf("lost Claim: %v; want ErrConflict wrapping ConditionalCheckFailedException", err)
	}
	if !strings.HasPrefix(err.Error(), "dynamo: claim") || !strings.Contains(err.Error(), `"w1"`) {
		t.Errorf("error text %q should name the package, operation and holder", err)
	}
	_, err = s.Cancel(ctx, "absent")
	if !errors.Is(err, store.ErrNotFound) || !errors.As(err, &ccf) {
		t.Errorf("Cancel absent: %v; want ErrNotFound wrapping ConditionalCheckFailedException", err)
	}
	err = s.UpdateLastPing(ctx, "absent", time.Now())
	if !errors.Is(err, store.ErrNotFound) || !errors.As(err, &ccf) {
		t.Errorf("UpdateLastPing absent: %v; want ErrNotFound wrapping ConditionalCheckFailedException", err)
	}
	// An update pushing the item past 400 KB is refused by DynamoDB with a
	// ValidationException; the store reports ErrTooLarge and keeps the SDK
	// error in the chain.
	big := &store.AsyncRequest{RequestID: "big", ConnectionID: "c-1", Payload: json.RawMessage(`"` + strings.Repeat("p", 300*1024) + `"`)}
	if err := s.Enqueue(ctx, big); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "big", "w1", time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = s.Complete(ctx, "big", "w1", json.RawMessage(`"`+strings.Repeat("r", 200*1024)+`"`))
	var api smithy.APIError
	if !errors.Is(err, store.ErrTooLarge) || !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Errorf("oversize Complete: %v; want ErrTooLarge wrapping the ValidationException", err)
	}
	// A cursor is bound to its list.
	for i := range 3 {
		if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: "l-" + string(rune('a'+i)), ConnectionID: "c-9", UserID: "u-9"}); err != nil {
			t.Fatal(err)
		}
	}
	_, next, err := s.ListRequestsByConnection(ctx, "c-9", 1, "")
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, err %v", next, err)
	}
	if _, _, err := s.ListRequestsByUser(ctx, "u-9", 1, next); !errors.Is(err, store.ErrInvalidInput) {
		t.Errorf("connection cursor on the user list: %v, want ErrInvalidInput", err)
	}
	if _, _, err := s.ListRequestsByConnection(ctx, "c-other", 1, next); !errors.Is(err, store.ErrInvalidInput) {
		t.Errorf("cursor on another connection's list: %v, want ErrInvalidInput", err)
	}
}

// TestItemLayout reads raw items back: the stream processor and the
// deployment rely on these attribute names and types.
func TestItemLayout(t *testing.T) {
	t.Parallel()
	s, _, clock, client := newCountingStore(t)
	ctx := t.Context()
	r := &store.AsyncRequest{
		RequestID: "r-1", ClientRequestID: "c-req", ConnectionID: "c-1", UserID: "u-1", TenantID: "t-1",
		Action: "report", Payload: json.RawMessage(`{"a":[1,2]}`), TTL: clock.Now().Add(time.Hour).Unix(),
	}
	if err := s.Enqueue(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, r.RequestID, "w1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateProgress(ctx, r.RequestID, "w1", 10, "going"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fail(ctx, r.RequestID, "w1", store.RequestError{Code: "TIMEOUT", Message: "slow"}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.RequestsTable()),
		Key:       map[string]types.AttributeValue{dynamo.AttrRequestID: &types.AttributeValueMemberS{Value: "r-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	item := out.Item
	wantTypes := map[string]string{
		dynamo.AttrRequestID: "S", dynamo.AttrClientRequestID: "S", dynamo.AttrConnectionID: "S",
		dynamo.AttrUserID: "S", dynamo.AttrTenantID: "S", dynamo.AttrAction: "S", dynamo.AttrPayload: "S",
		dynamo.AttrStatus: "S", dynamo.AttrProgress: "N", dynamo.AttrProgressMessage: "S", dynamo.AttrError: "M",
		dynamo.AttrAttempts: "N", dynamo.AttrCreatedAt: "S", dynamo.AttrUpdatedAt: "S", dynamo.AttrStartedAt: "S",
		dynamo.AttrCompletedAt: "S", dynamo.AttrTTL: "N",
	}
	for name, typ := range wantTypes {
		var got string
		switch item[name].(type) {
		case *types.AttributeValueMemberS:
			got = "S"
		case *types.AttributeValueMemberN:
			got = "N"
		case *types.AttributeValueMemberM:
			got = "M"
		}
		if got != typ {
			t.Errorf("attribute %s: type %q, want %q", name, got, typ)
		}
	}
	if extra := slices.DeleteFunc(slices.Collect(maps.Keys(item)), func(k string) bool { _, ok := wantTypes[k]; return ok }); len(extra) > 0 {
		t.Errorf("unexpected attributes %q (lease attributes must be gone after Fail)", extra)
	}
	var plain map[string]any
	if err := attributevalue.UnmarshalMap(item, &plain); err != nil {
		t.Fatal(err)
	}
	if plain[dynamo.AttrStatus] != "FAILED" || plain[dynamo.AttrPayload] != `{"a":[1,2]}` || plain[dynamo.AttrTTL] != float64(r.TTL) {
		t.Errorf("raw item %v", plain)
	}
	if _, err := time.Parse(dynamo.TimeLayout, plain[dynamo.AttrCreatedAt].(string)); err != nil {
		t.Errorf("created_at %q is not in TimeLayout: %v", plain[dynamo.AttrCreatedAt], err)
	}
	got, err := dynamo.UnmarshalRequest(item)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusFailed || got.Error == nil || got.Error.Code != "TIMEOUT" || got.ProgressMessage != "going" ||
		string(got.Payload) != string(r.Payload) || !got.CreatedAt.Equal(r.CreatedAt) || got.TTL != r.TTL {
		t.Errorf("UnmarshalRequest = %+v", got)
	}
}

func TestUnmarshalRequestRejectsGarbage(t *testing.T) {
	for name, item := range map[string]map[string]types.AttributeValue{
		"no request id": {dynamo.AttrStatus: &types.AttributeValueMemberS{Value: "PENDING"}},
		"bad time": {
			dynamo.AttrRequestID: &types.AttributeValueMemberS{Value: "r"},
			dynamo.AttrCreatedAt: &types.AttributeValueMemberS{Value: "yesterday"},
		},
		"wrong type": {
			dynamo.AttrRequestID: &types.AttributeValueMemberS{Value: "r"},
			dynamo.AttrAttempts:  &types.AttributeValueMemberS{Value: "many"},
		},
	} {
		if _, err := dynamo.UnmarshalRequest(item); err == nil {
			t.Errorf("%s: UnmarshalRequest accepted %v", name, item)
		}
	}
}

func TestTablesSchema(t *testing.T) {
	defs := dynamo.Tables("p-")
	if len(defs) != 3 || aws.ToString(defs[0].TableName) != "p-connections" || aws.ToString(defs[1].TableName) != "p-requests" || aws.ToString(defs[2].TableName) != "p-channels" {
		t.Fatalf("Tables = %v", defs)
	}
	indexes := func(d *dynamodb.CreateTableInput) map[string][]string {
		out := map[string][]string{}
		for _, g := range d.GlobalSecondaryIndexes {
			for _, k := range g.KeySchema {
				out[aws.ToString(g.IndexName)] = append(out[aws.ToString(g.IndexName)], aws.ToString(k.AttributeName))
			}
			// The list indexes serve whole records; the sweep index only
			// finds candidates, which ListStalled re-reads.
			want := types.ProjectionTypeAll
			if aws.ToString(g.IndexName) == dynamo.IndexRequestsToSweep {
				want = types.ProjectionTypeKeysOnly
			}
			if g.Projection == nil || g.Projection.ProjectionType != want {
				t.Errorf("index %s projects %v, want %s", aws.ToString(g.IndexName), g.Projection, want)
			}
		}
		return out
	}
	want := []map[string][]string{
		{dynamo.IndexConnectionsByUser: {dynamo.AttrUserID}, dynamo.IndexConnectionsByTenant: {dynamo.AttrTenantID}},
		{
			dynamo.IndexRequestsByConnection: {dynamo.AttrConnectionID, dynamo.AttrCreatedAt},
			dynamo.IndexRequestsByUser:       {dynamo.AttrUserID, dynamo.AttrCreatedAt},
			dynamo.IndexRequestsToSweep:      {dynamo.AttrSweepShard, dynamo.AttrSweepKey},
		},
		{},
	}
	keys := []string{dynamo.AttrConnectionID, dynamo.AttrRequestID}
	for i, d := range defs[:2] {
		if got := indexes(d); !maps.EqualFunc(got, want[i], slices.Equal) {
			t.Errorf("%s indexes = %v, want %v", aws.ToString(d.TableName), got, want[i])
		}
		if len(d.KeySchema) != 1 || aws.ToString(d.KeySchema[0].AttributeName) != keys[i] {
			t.Errorf("%s key = %v, want %s", aws.ToString(d.TableName), d.KeySchema, keys[i])
		}
	}
	if k := defs[2].KeySchema; len(k) != 2 || aws.ToString(k[0].AttributeName) != dynamo.AttrPK || k[0].KeyType != types.KeyTypeHash ||
		aws.ToString(k[1].AttributeName) != dynamo.AttrSK || k[1].KeyType != types.KeyTypeRange || defs[2].StreamSpecification != nil {
		t.Errorf("channels table key %v: want pk (hash), sk (range) and no stream", k)
	}
	if s := defs[1].StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || s.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Error("requests table must stream new and old images for the async processor")
	}
}

// TestCreateTablesIdempotent runs CreateTables on existing tables.
func TestCreateTablesIdempotent(t *testing.T) {
	t.Parallel()
	client := dynamotest.Client(t)
	prefix := dynamotest.Tables(t, client, "test")
	res, err := dynamo.CreateTables(t.Context(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Created || res[1].Created || res[2].Created {
		t.Errorf("second CreateTables = %+v, want three existing tables", res)
	}
	for _, r := range res {
		if !r.TTLEnabled && r.TTLUnsupported == nil {
			t.Errorf("%s: TTL neither enabled nor reported unsupported", r.Table)
		}
	}
}

// TestListCrossesOneMegabyte checks that the connection lists follow
// LastEvaluatedKey when DynamoDB cuts a page at 1 MB, well before the
// page size.
func TestListCrossesOneMegabyte(t *testing.T) {
	t.Parallel()
	s, counter, _, _ := newCountingStore(t) // default page size: 100 items
	ctx := t.Context()
	blob := strings.Repeat("x", 300*1024)
	for i := range 5 {
		c := &store.Connection{ConnectionID: "big-" + string(rune('a'+i)), UserID: "heavy", Metadata: map[string]string{"blob": blob}}
		if err := s.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	counter.Take()
	got, err := s.ListByUser(ctx, "heavy")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Errorf("ListByUser = %d connections, want 5", len(got))
	}
	if calls := counter.Take(); calls["Query"] < 2 {
		t.Errorf("ListByUser made %v; 1.5 MB of items cannot come back in one Query", calls)
	}
}

// TestRequestListFillsAPagePastOneMegabyte checks that a request list
// keeps querying when DynamoDB cuts a Query at 1 MB before the page is
// full, so the caller gets one whole page rather than a short one.
func TestRequestListFillsAPagePastOneMegabyte(t *testing.T) {
	t.Parallel()
	s, counter, clock, _ := newCountingStore(t) // default page size: 100 items
	ctx := t.Context()
	payload := json.RawMessage(`"` + strings.Repeat("x", 300*1024) + `"`)
	var want []string
	for i := range 5 {
		id := fmt.Sprintf("big-%d", i)
		if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: id, ConnectionID: "c-heavy", UserID: "u-heavy", Payload: payload}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
		clock.Advance(time.Millisecond)
	}
	for name, list := range map[string]func(context.Context, string, int, string) ([]*store.AsyncRequest, string, error){
		"ListRequestsByConnection": s.ListRequestsByConnection, "ListRequestsByUser": s.ListRequestsByUser,
	} {
		key := map[string]string{"ListRequestsByConnection": "c-heavy", "ListRequestsByUser": "u-heavy"}[name]
		counter.Take()
		page, next, err := list(ctx, key, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page {
			got = append(got, r.RequestID)
			if len(r.Payload) != len(payload) {
				t.Errorf("%s: %s came back with a %d-byte payload", name, r.RequestID, len(r.Payload))
			}
		}
		if !slices.Equal(got, want) || next != "" {
			t.Errorf("%s = %q, next %q; want %q in one page", name, got, next, want)
		}
		if calls := counter.Take(); calls["Query"] < 2 {
			t.Errorf("%s made %v; 1.5 MB of items cannot come back in one Query", name, calls)
		}
	}
}

// TestHugePageSize: a page size beyond int32 must not wrap to a negative
// Query Limit, which DynamoDB refuses.
func TestHugePageSize(t *testing.T) {
	t.Parallel()
	s, _, _, _ := newCountingStore(t, dynamo.WithPageSize(math.MaxInt))
	ctx := t.Context()
	if err := s.Save(ctx, &store.Connection{ConnectionID: "c-1", UserID: "u-1", TenantID: "t-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, &store.AsyncRequest{RequestID: "r-1", ConnectionID: "c-1", UserID: "u-1"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListByUser(ctx, "u-1"); err != nil || len(got) != 1 {
		t.Errorf("ListByUser = %d connections, %v; want 1", len(got), err)
	}
	if got, next, err := s.ListRequestsByUser(ctx, "u-1", 0, ""); err != nil || len(got) != 1 || next != "" {
		t.Errorf("ListRequestsByUser = %d requests, next %q, %v; want 1 and no cursor", len(got), next, err)
	}
	if _, err := s.DeleteStale(ctx, time.Time{}); err != nil {
		t.Errorf("DeleteStale: %v", err)
	}
}
