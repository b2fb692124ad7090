package dynamo

import (
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

// sweepKeyAt is the sort key of an active request: the time from which it
// counts as stalled, then its status.
func sweepKeyAt(at time.Time, st store.Status) string {
	return at.UTC().Format(TimeLayout) + "#" + string(st)
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

// parseSweepKey splits a sort key into its time and status.
func parseSweepKey(key string) (time.Time, store.Status, bool) {
	at, st, ok := strings.Cut(key, "#")
	if !ok {
		return time.Time{}, "", false
	}
	t, err := time.Parse(TimeLayout, at)
	if err != nil {
		return time.Time{}, "", false
	}
	return t, store.Status(st), true
}

// setActive adds the index keys of a request entering status st at at
// (the queue time, or the end of a new lease) to a transition.
func setActive(set map[string]any, requestID string, at time.Time, st store.Status) {
	set[AttrSweepShard] = sweepShard(requestID)
	set[AttrSweepKey] = sweepKeyAt(at, st)
}

// sweepCursor is where a ListStalled pass stands: the shard it is in and
// DynamoDB's LastEvaluatedKey in that shard (nil: the shard's start).
type sweepCursor struct {
	Shard int               `json:"s"`
	Key   map[string]string `json:"k,omitempty"`
}

func encodeSweepCursor(shard int, key map[string]types.AttributeValue) string {
	c := sweepCursor{Shard: shard}
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
// that names another shard than its key or attributes of another index.
func decodeSweepCursor(cursor string) (int, map[string]types.AttributeValue, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, nil, false
	}
	var c sweepCursor
	if json.Unmarshal(b, &c) != nil || c.Shard < 0 || c.Shard >= SweepShards {
		return 0, nil, false
	}
	if c.Key == nil {
		return c.Shard, nil, true
	}
	if len(c.Key) != 3 || c.Key[AttrRequestID] == "" || c.Key[AttrSweepKey] == "" ||
		c.Key[AttrSweepShard] != sweepShardName(c.Shard) {
		return 0, nil, false
	}
	key := make(map[string]types.AttributeValue, len(c.Key))
	for k, v := range c.Key {
		key[k] = &types.AttributeValueMemberS{Value: v}
	}
	return c.Shard, key, true
}

// ListStalled queries IndexRequestsToSweep shard by shard for requests
// whose sweep key is due (at or before now), keeps those whose key says
// they are stalled (PROCESSING, or PENDING since before pendingBefore),
// and re-reads each with a consistent GetItem, keeping it only if it is
// still stalled: the index is eventually consistent and holds keys only.
// Within a shard the order is oldest first; shards follow one another.
//
// Cost: an idle table costs SweepShards Query calls of 0.5 read units
// each; every candidate costs one GetItem more. Requests that end leave
// the index, so its size is the number of active requests, not the
// table's.
func (s *Store) ListStalled(ctx context.Context, pendingBefore time.Time, limit int, cursor string) ([]*store.AsyncRequest, string, error) {
	const op = "list stalled requests"
	if err := checkCtx(ctx, op); err != nil {
		return nil, "", err
	}
	shard := 0
	var start map[string]types.AttributeValue
	if cursor != "" {
		var ok bool
		if shard, start, ok = decodeSweepCursor(cursor); !ok {
			return nil, "", invalid(op, "", "malformed cursor")
		}
	}
	if limit <= 0 {
		limit = s.pageSize
	}
	now := s.clock()
	// Keys sort by time first, so every key whose time is at or before
	// now is below the bare time of the next nanosecond.
	due := expression.Key(AttrSweepKey).LessThan(expression.Value(now.Add(time.Nanosecond).Format(TimeLayout)))
	page := make([]*store.AsyncRequest, 0, min(limit, 64))
	for ; shard < SweepShards; shard, start = shard+1, nil {
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
				return page, encodeSweepCursor(shard, start), nil
			}
		}
		if len(page) >= limit && shard+1 < SweepShards {
			return page, encodeSweepCursor(shard+1, nil), nil
		}
	}
	return page, "", nil
}

// stalledCandidate reads the request an index entry points to, if its key
// says it may be stalled, and returns it if it is; nil otherwise.
func (s *Store) stalledCandidate(ctx context.Context, item map[string]types.AttributeValue, now, pendingBefore time.Time) (*store.AsyncRequest, error) {
	id, _ := item[AttrRequestID].(*types.AttributeValueMemberS)
	key, _ := item[AttrSweepKey].(*types.AttributeValueMemberS)
	if id == nil || key == nil {
		return nil, nil
	}
	at, st, ok := parseSweepKey(key.Value)
	if !ok || (st == store.StatusPending && !at.Before(pendingBefore)) {
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
