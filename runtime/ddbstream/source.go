package ddbstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Source is a Lambda event source mapping on a Stream.
type Source struct {
	// Name identifies the mapping in logs.
	Name   string
	Stream *Stream
	// Invoke runs the function with a DynamoDB event's JSON and returns
	// its response; an error is a failed invocation.
	Invoke func(ctx context.Context, payload []byte) ([]byte, error)
	// BatchSize is at most how many records an invocation gets. Zero
	// means 100.
	BatchSize int
	// TrimHorizon starts at the oldest record kept instead of the records
	// written after Run starts (LATEST).
	TrimHorizon bool
	// Filters are the FilterCriteria; a record passes when one matches.
	// None passes every record.
	Filters []*Filter
	// ReportBatchItemFailures makes the function's batchItemFailures
	// answer retry from the first failed record.
	ReportBatchItemFailures bool
	// MaxRetries is MaximumRetryAttempts; negative retries until the
	// records leave the stream.
	MaxRetries int
	// Bisect halves a failing batch before retrying it.
	Bisect bool
	// RetryDelay is the pause before a retry. Zero means 500 ms.
	RetryDelay time.Duration
	// Logger may be nil.
	Logger *slog.Logger
}

// Run delivers the stream to the function until ctx ends, then returns
// ctx.Err(). Records of one stream are delivered in order, one batch at a
// time.
func (s *Source) Run(ctx context.Context) error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("eventSource", s.Name)
	batchSize := s.BatchSize
	if batchSize <= 0 {
		batchSize = 100
	}
	delay := s.RetryDelay
	if delay <= 0 {
		delay = 500 * time.Millisecond
	}
	cursor := s.Stream.Latest()
	if s.TrimHorizon {
		cursor = 0
	}
	limit := batchSize // shrinks while bisecting a failing batch
	attempts := 0
	for {
		batch, next, err := s.read(ctx, cursor, limit)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			cursor, limit, attempts = next, batchSize, 0
			continue
		}
		failedAt, err := s.invoke(ctx, batch)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && failedAt < 0 {
			cursor, limit, attempts = next, batchSize, 0
			continue
		}
		if failedAt > 0 {
			// The records before the first failure are done.
			cursor = seqOf(batch[failedAt])
			batch = batch[failedAt:]
		}
		attempts++
		if s.MaxRetries >= 0 && attempts > s.MaxRetries {
			log.Error("ddbstream: batch failed after its retries; skipping it", "records", len(batch), "first", batch[0].Change.SequenceNumber, "err", err)
			cursor = seqOf(batch[len(batch)-1]) + 1
			limit, attempts = batchSize, 0
			continue
		}
		log.Info("ddbstream: batch failed; retrying", "records", len(batch), "attempt", attempts, "err", err)
		if s.Bisect && err != nil && len(batch) > 1 {
			limit = (len(batch) + 1) / 2
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// read returns the next batch of records that pass the filters (filtered
// before batching, as Lambda does), and the sequence number after the
// last record looked at. It waits only for the first record.
func (s *Source) read(ctx context.Context, from int64, max int) ([]events.DynamoDBEventRecord, int64, error) {
	var out []events.DynamoDBEventRecord
	for {
		recs, next, err := s.Stream.Read(ctx, from, max-len(out))
		if err != nil {
			return nil, from, err
		}
		for _, r := range recs {
			if len(s.Filters) == 0 || s.passes(r) {
				out = append(out, r)
			}
		}
		from = next
		if len(out) >= max || from >= s.Stream.Latest() || (len(out) == 0 && ctx.Err() != nil) {
			return out, from, nil
		}
		if len(out) == 0 {
			// Nothing passed yet: wait for more, as a poller would.
			return out, from, nil
		}
	}
}

func (s *Source) passes(r events.DynamoDBEventRecord) bool {
	b, err := json.Marshal(r)
	if err != nil {
		return false
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return false
	}
	for _, f := range s.Filters {
		if f.Match(doc) {
			return true
		}
	}
	return false
}

var errBadFailures = errors.New("ddbstream: batchItemFailures names no record of the batch")

// invoke runs one batch; failedAt is the index of the first record to
// retry (-1: none).
func (s *Source) invoke(ctx context.Context, batch []events.DynamoDBEventRecord) (int, error) {
	payload, err := json.Marshal(events.DynamoDBEvent{Records: batch})
	if err != nil {
		return 0, err
	}
	resp, err := s.Invoke(ctx, payload)
	if err != nil {
		return 0, err
	}
	if !s.ReportBatchItemFailures {
		return -1, nil
	}
	var r events.DynamoDBEventResponse
	if len(resp) == 0 || string(resp) == "null" || json.Unmarshal(resp, &r) != nil || len(r.BatchItemFailures) == 0 {
		// Lambda reads an empty or unparsable answer as success.
		return -1, nil
	}
	first := -1
	for _, f := range r.BatchItemFailures {
		found := false
		for i, rec := range batch {
			if rec.Change.SequenceNumber == f.ItemIdentifier {
				found = true
				if first < 0 || i < first {
					first = i
				}
			}
		}
		if !found {
			// An identifier that is no record's fails the whole batch.
			return 0, fmt.Errorf("%w: %q", errBadFailures, f.ItemIdentifier)
		}
	}
	return first, nil
}

func seqOf(r events.DynamoDBEventRecord) int64 {
	var n int64
	_, _ = fmt.Sscanf(r.Change.SequenceNumber, "%d", &n)
	return n
}
