package ddbstream

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-lambda-go/events"
)

// The stream view types of StreamSpecification.
const (
	KeysOnly        = "KEYS_ONLY"
	NewImage        = "NEW_IMAGE"
	OldImage        = "OLD_IMAGE"
	NewAndOldImages = "NEW_AND_OLD_IMAGES"
)

// maxRecords bounds a stream's memory: older records are dropped (a real
// stream keeps 24 hours).
const maxRecords = 100_000

// Stream is one table's change log.
type Stream struct {
	// Table is the table's name, ViewType its StreamViewType, ARN the
	// stream's ARN (eventSourceARN of its records), Region awsRegion.
	Table, ViewType, ARN, Region string

	// write serialises the proxy's writes to the table, so the images
	// read around each write are that write's.
	write sync.Mutex

	mu      sync.Mutex
	records []events.DynamoDBEventRecord
	first   int64 // sequence number of records[0]
	next    int64 // sequence number of the next record
	notify  chan struct{}
}

// NewStream returns an empty stream for table with view type viewType.
func NewStream(table, viewType, arn, region string) (*Stream, error) {
	switch viewType {
	case KeysOnly, NewImage, OldImage, NewAndOldImages:
	default:
		return nil, fmt.Errorf("ddbstream: table %s: unknown StreamViewType %q", table, viewType)
	}
	return &Stream{Table: table, ViewType: viewType, ARN: arn, Region: region, first: 1, next: 1, notify: make(chan struct{})}, nil
}

// Latest is the sequence number the next record will get: reading from
// it is StartingPosition LATEST.
func (s *Stream) Latest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// append adds a record and wakes the readers.
func (s *Stream) append(rec events.DynamoDBEventRecord) {
	s.mu.Lock()
	rec.Change.SequenceNumber = fmt.Sprintf("%021d", s.next)
	rec.EventID = fmt.Sprintf("%s-%d", s.Table, s.next)
	s.next++
	s.records = append(s.records, rec)
	if len(s.records) > maxRecords {
		drop := len(s.records) - maxRecords
		s.records = append([]events.DynamoDBEventRecord(nil), s.records[drop:]...)
		s.first += int64(drop)
	}
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// Read returns up to max records from sequence number from on, waiting
// until there is at least one or ctx ends. It also returns the sequence
// number after the last record returned.
func (s *Stream) Read(ctx context.Context, from int64, max int) ([]events.DynamoDBEventRecord, int64, error) {
	for {
		s.mu.Lock()
		if from < s.first {
			from = s.first // trimmed: the records are gone, as after 24 h
		}
		if from < s.next {
			i := int(from - s.first)
			j := min(i+max, len(s.records))
			out := append([]events.DynamoDBEventRecord(nil), s.records[i:j]...)
			s.mu.Unlock()
			return out, from + int64(len(out)), nil
		}
		wait := s.notify
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, from, ctx.Err()
		}
	}
}
