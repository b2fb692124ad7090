package awslambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/dynamo"
	"github.com/streamer-go/streamer/pkg/streamer"
)

// DefaultStreamConcurrency is how many requests of one batch run at once.
const DefaultStreamConcurrency = 10

// StreamHandler returns the handler of the requests table's DynamoDB
// stream. It runs each record that needs work — an INSERT or MODIFY whose
// new image has status PENDING (a new request, or one put back for a
// retry) — with p.Process. Progress, completion and cancellation writes
// leave the status other than PENDING, so they never trigger work.
//
// A record whose request could not be processed because the store failed is
// reported in BatchItemFailures, so Lambda retries from it rather than
// failing the whole batch (the event source mapping must enable
// ReportBatchItemFailures). A record that cannot be decoded is logged and
// skipped: retrying would not help.
//
// Requests run under the invocation's deadline less a reserve (a quarter
// of the remaining time, at most [MaxSweepReserve], as for SweepHandler):
// a handler still running then is cut short, and its request is put back
// in the queue and the Flusher run while Lambda still lets the process
// work. Cut at the deadline itself, those writes would never happen: the
// request would sit PROCESSING until its lease expired and the whole
// batch would be retried as a timed-out invocation. Retries inside one
// invocation are bounded by the same deadline, which Process reads from
// its ctx.
func StreamHandler(p *streamer.Processor, opts ...Option) func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	cfg := newConfig(opts)
	return func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		defer cfg.flush(ctx)
		type job struct {
			requestID string
			seqs      []string
		}
		var jobs []*job
		byID := map[string]*job{}
		for _, rec := range ev.Records {
			id, ok, err := PendingRequest(rec)
			if err != nil {
				cfg.log.ErrorContext(ctx, "skipping undecodable stream record", slog.String("event_id", rec.EventID), slog.Any("error", err))
				continue
			}
			if !ok {
				continue
			}
			// The same request may appear twice in a batch (queued, then
			// put back for a retry); it is run once.
			if j := byID[id]; j != nil {
				j.seqs = append(j.seqs, rec.Change.SequenceNumber)
				continue
			}
			j := &job{requestID: id, seqs: []string{rec.Change.SequenceNumber}}
			byID[id] = j
			jobs = append(jobs, j)
		}

		pctx, cancel := withReserve(ctx)
		defer cancel()
		var (
			mu     sync.Mutex
			failed = map[string]bool{}
			wg     sync.WaitGroup
			sem    = make(chan struct{}, cfg.concurrency)
		)
		for _, j := range jobs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := p.Process(pctx, j.requestID); err != nil {
					cfg.log.ErrorContext(ctx, "processing request", slog.String("request_id", j.requestID), slog.Any("error", err))
					mu.Lock()
					for _, s := range j.seqs {
						failed[s] = true
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()

		var resp events.DynamoDBEventResponse
		for _, rec := range ev.Records { // in batch order
			if s := rec.Change.SequenceNumber; failed[s] {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: s})
				delete(failed, s)
			}
		}
		return resp, nil
	}
}

// PendingRequest reports whether a stream record asks for work, and the
// request id if so: INSERT or MODIFY with a new image whose status is
// PENDING. The image is decoded exactly as the DynamoDB store encodes
// requests.
func PendingRequest(rec events.DynamoDBEventRecord) (requestID string, pending bool, err error) {
	switch events.DynamoDBOperationType(rec.EventName) {
	case events.DynamoDBOperationTypeInsert, events.DynamoDBOperationTypeModify:
	default:
		return "", false, nil
	}
	if len(rec.Change.NewImage) == 0 {
		return "", false, fmt.Errorf("awslambda: %s record %s has no new image (the stream must include new images)", rec.EventName, rec.EventID)
	}
	item, err := AttributeValues(rec.Change.NewImage)
	if err != nil {
		return "", false, err
	}
	ar, err := dynamo.UnmarshalRequest(item)
	if err != nil {
		return "", false, err
	}
	return ar.RequestID, ar.Status == store.StatusPending, nil
}

// errUnknownType is returned for an attribute value of no known type.
var errUnknownType = errors.New("awslambda: stream attribute of unknown type")

// AttributeValues converts a stream image (aws-lambda-go's types) into the
// SDK's types, so that attributevalue and the DynamoDB store can decode it.
// Hand-written because neither aws-lambda-go nor the SDK v2 ships the
// conversion; it is a one-to-one mapping of the ten DynamoDB types.
func AttributeValues(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(image))
	for k, v := range image {
		av, err := attributeValue(v)
		if err != nil {
			return nil, fmt.Errorf("%w (attribute %q)", err, k)
		}
		out[k] = av
	}
	return out, nil
}

func attributeValue(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		list := v.List()
		out := make([]types.AttributeValue, len(list))
		for i, e := range list {
			av, err := attributeValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = av
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case events.DataTypeMap:
		m, err := AttributeValues(v.Map())
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	}
	return nil, errUnknownType
}
