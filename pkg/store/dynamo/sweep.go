package dynamo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
)

// sweepShard spreads requests over the SweepShards partitions of
// IndexRequestsToSweep by a hash of their id: deterministic, so every
// transition writes the same value without reading the item.
func sweepShard(requestID string) string {
	h := fnv.New32a()
	h.Write([]byte(requestID))
	return sweepShardName(int(h.Sum32() % SweepShards))
}

// sweepShardName is the partition key value of shard n.
func sweepShardName(n int) string { return strconv.Itoa(n) }

// sweepKeyAt is the sort key of an active request: its status, then the
// time from which it counts as stalled. Status first, so that ListStalled
// reads two exact key ranges per shard and never a young PENDING request.
func sweepKeyAt(at time.Time, st store.Status) string {
	return string(st) + "#" + at.UTC().Format(TimeLayout)
}

// sweepKey is r's sort key in IndexRequestsToSweep: PENDING requests
// from the time they were queued (UpdatedAt does not change while
// PENDING), PROCESSING ones from the end of their lease.
func sweepKey(r *store.AsyncRequest) string {
	if r.Status == store.StatusProcessing {
		return sweepKeyAt(r.LeaseUntil, r.Status)
	}
	return sweepKeyAt(r.UpdatedAt, store.StatusPending)
}

// sweepRanges is how many key ranges a ListStalled pass reads: in each
// shard, the PENDING keys and then the PROCESSING ones.
const sweepRanges = 2 * SweepShards

// sweepRange names range i of a pass: its shard and the status its keys
// start with.
func sweepRange(i int) (shard int, st store.Status) {
	if i%2 == 0 {
		return i / 2, store.StatusPending
	}
	return i / 2, store.StatusProcessing
}

// setActive adds the index keys of a request entering status st at at
// (the queue time, or the end of a new lease) to a transition.
func setActive(set map[string]any, requestID string, at time.Time, st store.Status) {
	set[AttrSweepShard] = sweepShard(requestID)
	set[AttrSweepKey] = sweepKeyAt(at, st)
}

// sweepCursor is where a ListStalled pass stands: the key range it is in
// (see sweepRange) and DynamoDB's LastEvaluatedKey in that range (nil: the
// range's start).
type sweepCursor struct {
	Range int               `json:"r"`
	Key   map[string]string `json:"k,omitempty"`
}

func encodeSweepCursor(rng int, key map[string]types.AttributeValue) string {
	c := sweepCursor{Range: rng}
	if len(key) > 0 {
		c.Key = make(map[string]string, len(key))
		for k, v := range key {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				c.Key[k] = s.Value
			}
		}
	}
	b, _ := json.Marshal(c) // cannot fail: an int and strings
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeSweepCursor parses a cursor of encodeSweepCursor, refusing one
// whose key lies outside its range or names attributes of another index.
func decodeSweepCursor(cursor string) (int, map[string]types.AttributeValue, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, nil, false
	}
	// Unknown fields are refused: a request list's cursor (its
	// LastEvaluatedKey) would otherwise decode as the start of range 0.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c sweepCursor
	if dec.Decode(&c) != nil || dec.More() || c.Range < 0 || c.Range >= sweepRanges {
		return 0, nil, false
	}
	if c.Key == nil {
		return c.Range, nil, true
	}
	shard, st := sweepRange(c.Range)
	if len(c.Key) != 3 || c.Key[AttrRequestID] == "" || c.Key[AttrSweepShard] != sweepShardName(shard) ||
		!strings.HasPrefix(c.Key[AttrSweepKey], string(st)+"#") {
		return 0, nil, false
	}
	key := make(map[string]types.AttributeValue, len(c.Key))
	for k, v := range c.Key {
		key[k] = &types.AttributeValueMemberS{Value: v}
	}
	return c.Range, key, true
}

// ListStalled queries IndexRequestsToSweep shard by shard, reading two
// key ranges in each: PENDING keys queued before pendingBefore, and
// PROCESSING keys whose lease ended at or before now. It re-reads each
// candidate with a consistent GetItem and keeps it only if it is still
// stalled: the index is eventually consistent and holds keys only. Within
// a range the order is oldest first; ranges follow one another.
//
// Cost: an idle table costs 2×SweepShards Query calls of 0.5 read units
// each; every candidate costs one GetItem more. Requests leave the index
// when they end and are read only once stalled, so a pass costs neither
// the table's size nor the number of requests at work.
func (s *Store) ListStalled(ctx context.Context, pendingBefore time.Time, limit int, cursor string) ([]*store.AsyncRequest, string, error) {
	const op = "list stalled requests"
	if err := checkCtx(ctx, op); err != nil {
		return nil, "", err
	}
	rng := 0
	var start map[string]types.AttributeValue
	if cursor != "" {
		var ok bool
		if rng, start, ok = decodeSweepCursor(cursor); !ok {
			return nil, "", invalid(op, "", "malformed cursor")
		}
	}
	limit = s.queryLimit(limit)
	now := s.clock()
	page := make([]*store.AsyncRequest, 0, min(limit, 64))
	for ; rng < sweepRanges; rng, start = rng+1, nil {
		shard, st := sweepRange(rng)
		key := expression.Key(AttrSweepKey)
		due := key.LessThan(expression.Value(sweepKeyAt(pendingBefore, store.StatusPending)))
		if st == store.StatusProcessing {
			due = key.Between(expression.Value(string(st)+"#"), expression.Value(sweepKeyAt(now, st)))
		}
		expr, err := expression.NewBuilder().
			WithKeyCondition(expression.Key(AttrSweepShard).Equal(expression.Value(sweepShardName(shard))).And(due)).
			Build()
		if err != nil {
			return nil, "", opError(op, "", err)
		}
		for {
			out, err := s.client.Query(ctx, &dynamodb.QueryInput{
				TableName:                 aws.String(s.requests),
				IndexName:                 aws.String(IndexRequestsToSweep),
				KeyConditionExpression:    expr.KeyCondition(),
				ExpressionAttributeNames:  expr.Names(),
				ExpressionAttributeValues: expr.Values(),
				ExclusiveStartKey:         start,
				Limit:                     aws.Int32(int32(limit - len(page))),
				ScanIndexForward:          aws.Bool(true),
			})
			if err != nil {
				return nil, "", opError(op, "", err)
			}
			for _, item := range out.Items {
				r, err := s.stalledCandidate(ctx, item, now, pendingBefore)
				if err != nil {
					return nil, "", opError(op, "", err)
				}
				if r != nil {
					page = append(page, r)
				}
			}
			start = out.LastEvaluatedKey
			if len(start) == 0 {
				break
			}
			if len(page) >= limit {
				return page, encodeSweepCursor(rng, start), nil
			}
		}
		if len(page) >= limit && rng+1 < sweepRanges {
			return page, encodeSweepCursor(rng+1, nil), nil
		}
	}
	return page, "", nil
}

// stalledCandidate reads the request an index entry points to and returns
// it if it is stalled; nil otherwise (it moved on, or expired).
func (s *Store) stalledCandidate(ctx context.Context, item map[string]types.AttributeValue, now, pendingBefore time.Time) (*store.AsyncRequest, error) {
	id, _ := item[AttrRequestID].(*types.AttributeValueMemberS)
	if id == nil {
		return nil, nil
	}
	r, err := s.read(ctx, id.Value)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !r.Stalled(now, pendingBefore) {
		return nil, nil
	}
	return r, nil
}
