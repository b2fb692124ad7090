package dynamo_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
)

// sweepIndex returns the sweep keys IndexRequestsToSweep holds, by
// request id, reading every shard.
func sweepIndex(t *testing.T, client *dynamodb.Client, table string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var start map[string]types.AttributeValue
	for {
		page, err := client.Scan(t.Context(), &dynamodb.ScanInput{
			TableName: aws.String(table), IndexName: aws.String(dynamo.IndexRequestsToSweep), ExclusiveStartKey: start,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			if len(item) != 3 {
				t.Errorf("index entry %v: want the keys only", item)
			}
			id := item[dynamo.AttrRequestID].(*types.AttributeValueMemberS).Value
			out[id] = item[dynamo.AttrSweepKey].(*types.AttributeValueMemberS).Value
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return out
		}
	}
}

// The sweep index holds exactly the active requests, keyed by status and
// the time they become stalled, and ListStalled costs two Query calls per
// shard plus one GetItem per candidate, however many finished (or young)
// requests the table holds.
func TestListStalledUsesTheSparseIndex(t *testing.T) {
	t.Parallel()
	s, counter, clock, client := newCountingStore(t)
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	t0 := clock.Now()
	for _, id := range []string{"pending", "running", "requeued", "completed", "cancelled"} {
		must(s.Enqueue(ctx, &store.AsyncRequest{RequestID: id, ConnectionID: "c-1", UserID: "u-1", Action: "a"}))
	}
	for i := range 20 { // finished work the sweep must not pay for
		id := "done-" + string(rune('a'+i))
		must(s.Enqueue(ctx, &store.AsyncRequest{RequestID: id, ConnectionID: "c-1"}))
		_, err := s.Claim(ctx, id, "w", time.Minute)
		must(err)
		_, err = s.Complete(ctx, id, "w", nil)
		must(err)
	}
	for _, id := range []string{"running", "requeued", "completed"} {
		_, err := s.Claim(ctx, id, "w1", 30*time.Second)
		must(err)
	}
	must(s.UpdateProgress(ctx, "running", "w1", 50, "half"))
	_, err := s.Requeue(ctx, "requeued", "w1", store.RequestError{Code: "INTERNAL"}, 3)
	must(err)
	_, err = s.Complete(ctx, "completed", "w1", json.RawMessage(`1`))
	must(err)
	_, err = s.Cancel(ctx, "cancelled")
	must(err)

	ts := func(d time.Duration) string { return t0.Add(d).Format(dynamo.TimeLayout) }
	want := map[string]string{
		"pending":  "PENDING#" + ts(0),
		"running":  "PROCESSING#" + ts(30*time.Second),
		"requeued": "PENDING#" + ts(0),
	}
	if got := sweepIndex(t, client, s.RequestsTable()); !maps.Equal(got, want) {
		t.Errorf("sweep index = %v, want %v", got, want)
	}
	clock.Advance(10 * time.Second)
	must(s.RenewLease(ctx, "running", "w1", 30*time.Second))
	if got := sweepIndex(t, client, s.RequestsTable())["running"]; got != "PROCESSING#"+ts(40*time.Second) {
		t.Errorf("renewed lease: sweep key %q, want the new lease end", got)
	}

	// Nothing due: two Query calls per shard (PENDING keys, PROCESSING
	// keys), no reads, not even of the two PENDING requests that are too
	// young to count.
	counter.Take()
	page, next, err := s.ListStalled(ctx, t0, 0, "")
	must(err)
	if len(page) != 0 || next != "" {
		t.Errorf("ListStalled before anything is due = %d requests, next %q", len(page), next)
	}
	if got := counter.Take(); !maps.Equal(got, map[string]int{"Query": 2 * dynamo.SweepShards}) {
		t.Errorf("idle ListStalled calls %v, want %d Query", got, 2*dynamo.SweepShards)
	}

	// Everything due: one consistent read per candidate.
	clock.Advance(time.Minute)
	page, _, err = s.ListStalled(ctx, clock.Now(), 0, "")
	must(err)
	var ids []string
	for _, r := range page {
		ids = append(ids, r.RequestID)
	}
	slices.Sort(ids)
	if strings.Join(ids, ",") != "pending,requeued,running" {
		t.Errorf("ListStalled = %q", ids)
	}
	if got := counter.Take(); !maps.Equal(got, map[string]int{"Query": 2 * dynamo.SweepShards, "GetItem": 3}) {
		t.Errorf("ListStalled calls %v, want %d Query and 3 GetItem", got, 2*dynamo.SweepShards)
	}
}
