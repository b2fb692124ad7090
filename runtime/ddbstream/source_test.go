package ddbstream

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// These tests feed a stream directly and run a Source against an
// in-process function; the proxy's tests use dynalite.

func pending(id, status string) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		EventName: "INSERT",
		Change: events.DynamoDBStreamRecord{
			Keys:     map[string]events.DynamoDBAttributeValue{"id": events.NewStringAttribute(id)},
			NewImage: map[string]events.DynamoDBAttributeValue{"id": events.NewStringAttribute(id), "status": events.NewStringAttribute(status)},
		},
	}
}

type recorder struct {
	mu      sync.Mutex
	batches [][]string
	answer  func(call int, ids []string) ([]byte, error)
	got     chan struct{}
}

func (r *recorder) invoke(_ context.Context, payload []byte) ([]byte, error) {
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	var ids []string
	for _, rec := range ev.Records {
		ids = append(ids, rec.Change.Keys["id"].String()+"@"+rec.Change.SequenceNumber[len(rec.Change.SequenceNumber)-1:])
	}
	r.mu.Lock()
	r.batches = append(r.batches, ids)
	call := len(r.batches)
	r.mu.Unlock()
	defer func() { r.got <- struct{}{} }()
	if r.answer != nil {
		return r.answer(call, ids)
	}
	return []byte("null"), nil
}

func runSource(t *testing.T, src *Source, records []events.DynamoDBEventRecord, calls int, r *recorder) [][]string {
	t.Helper()
	// Every record is on the stream before Run starts from the trim
	// horizon, so the first read sees them all and the batches do not
	// depend on how the appends interleave with the reader.
	if !src.TrimHorizon {
		t.Fatal("runSource needs a Source that starts at the trim horizon")
	}
	for _, rec := range records {
		src.Stream.append(rec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	for range calls {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatalf("only %v", r.batches)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.batches
}

func newSource(t *testing.T, r *recorder) *Source {
	st, err := NewStream("t", NewAndOldImages, "arn", "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	return &Source{Name: "test", Stream: st, Invoke: r.invoke, BatchSize: 2, RetryDelay: time.Millisecond, MaxRetries: -1, TrimHorizon: true}
}

func TestSourceBatchesInOrderThroughTheFilter(t *testing.T) {
	r := &recorder{got: make(chan struct{}, 10)}
	src := newSource(t, r)
	f, err := CompileFilter(`{"eventName":["INSERT","MODIFY"],"dynamodb":{"NewImage":{"status":{"S":["PENDING"]}}}}`)
	if err != nil {
		t.Fatal(err)
	}
	src.Filters = []*Filter{f}
	got := runSource(t, src, []events.DynamoDBEventRecord{pending("a", "PENDING"), pending("b", "DONE"), pending("c", "PENDING"), pending("d", "PENDING")}, 2, r)
	if len(got) != 2 || len(got[0]) != 2 || got[0][0] != "a@1" || got[0][1] != "c@3" || got[1][0] != "d@4" {
		t.Fatalf("batches %v", got)
	}
}

func TestSourcePartialBatchFailureRetriesFromTheFailedRecord(t *testing.T) {
	r := &recorder{got: make(chan struct{}, 10)}
	r.answer = func(call int, ids []string) ([]byte, error) {
		if call == 1 {
			return []byte(`{"batchItemFailures":[{"itemIdentifier":"000000000000000000002"}]}`), nil
		}
		return []byte(`{"batchItemFailures":[]}`), nil
	}
	src := newSource(t, r)
	src.ReportBatchItemFailures = true
	got := runSource(t, src, []events.DynamoDBEventRecord{pending("a", "P"), pending("b", "P"), pending("c", "P")}, 2, r)
	if len(got[0]) != 2 || got[1][0] != "b@2" || got[1][1] != "c@3" {
		t.Fatalf("batches %v", got)
	}
}

func TestSourceRetriesUpToTheLimitThenSkips(t *testing.T) {
	r := &recorder{got: make(chan struct{}, 10)}
	r.answer = func(call int, ids []string) ([]byte, error) {
		if ids[0] == "a@1" {
			return nil, errors.New("boom")
		}
		return nil, nil
	}
	src := newSource(t, r)
	src.MaxRetries = 2
	src.BatchSize = 1
	got := runSource(t, src, []events.DynamoDBEventRecord{pending("a", "P"), pending("b", "P")}, 4, r)
	want := []string{"a@1", "a@1", "a@1", "b@2"}
	for i, w := range want {
		if got[i][0] != w {
			t.Fatalf("batches %v, want %v", got, want)
		}
	}
}

func TestSourceBisects(t *testing.T) {
	r := &recorder{got: make(chan struct{}, 10)}
	r.answer = func(call int, ids []string) ([]byte, error) {
		if call == 1 {
			return nil, errors.New("boom")
		}
		return nil, nil
	}
	src := newSource(t, r)
	src.Bisect = true
	got := runSource(t, src, []events.DynamoDBEventRecord{pending("a", "P"), pending("b", "P")}, 3, r)
	if len(got[0]) != 2 || len(got[1]) != 1 || got[1][0] != "a@1" || got[2][0] != "b@2" {
		t.Fatalf("batches %v", got)
	}
}

func TestFilters(t *testing.T) {
	doc := map[string]any{"eventName": "MODIFY", "dynamodb": map[string]any{"NewImage": map[string]any{"n": map[string]any{"N": "5"}, "s": map[string]any{"S": "hello"}}}}
	for pattern, want := range map[string]bool{
		`{"eventName":["MODIFY"]}`:                                           true,
		`{"eventName":["INSERT"]}`:                                           false,
		`{"eventName":[{"anything-but":["REMOVE"]}]}`:                        true,
		`{"dynamodb":{"NewImage":{"s":{"S":[{"prefix":"he"}]}}}}`:            true,
		`{"dynamodb":{"NewImage":{"n":{"N":[{"numeric":[">",3,"<=",5]}]}}}}`: true,
		`{"dynamodb":{"NewImage":{"n":{"N":[{"numeric":[">",5]}]}}}}`:        false,
		`{"dynamodb":{"NewImage":{"x":[{"exists":false}]}}}`:                 true,
		`{"dynamodb":{"NewImage":{"s":[{"exists":true}]}}}`:                  true,
		`{"dynamodb":{"OldImage":{"s":{"S":["hello"]}}}}`:                    false,
	} {
		f, err := CompileFilter(pattern)
		if err != nil {
			t.Fatalf("%s: %v", pattern, err)
		}
		if got := f.Match(doc); got != want {
			t.Errorf("%s matched %v, want %v", pattern, got, want)
		}
	}
	if _, err := CompileFilter(`{"a":[{"wildcard":"x*"}]}`); !errors.Is(err, ErrFilter) {
		t.Errorf("unsupported operator: %v", err)
	}
	if _, err := CompileFilter(`{"a":"x"}`); !errors.Is(err, ErrFilter) {
		t.Errorf("bare value: %v", err)
	}
}
