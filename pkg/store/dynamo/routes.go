package dynamo

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
)

// batchGetter is the batched read GetRoutes uses when the client has it
// (the SDK's *dynamodb.Client does); Client leaves it out so that
// existing wrappers of Client keep compiling.
type batchGetter interface {
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// maxBatchGet is DynamoDB's limit of keys per BatchGetItem.
const maxBatchGet = 100

// routeReaders bounds the GetItems GetRoutes runs at once on a client
// without BatchGetItem.
const routeReaders = 8

// GetRoutes reads the Routes of ids with consistent BatchGetItems of up to
// 100 keys, projected to what a send needs, retrying unprocessed keys;
// with a client that has no BatchGetItem, with GetRoute per ID, a few at
// a time. Absent and expired connections are left out of the map.
func (s *Store) GetRoutes(ctx context.Context, ids []string) (map[string]store.Route, error) {
	const op = "get connections"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	out := make(map[string]store.Route, len(ids))
	bg, ok := s.client.(batchGetter)
	if !ok {
		return out, s.getRoutesOneByOne(ctx, ids, out)
	}
	now := s.clock().Unix()
	for start := 0; start < len(ids); start += maxBatchGet {
		keys := make([]map[string]types.AttributeValue, 0, min(maxBatchGet, len(ids)-start))
		seen := map[string]bool{}
		for _, id := range ids[start:min(start+maxBatchGet, len(ids))] {
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			keys = append(keys, stringKey(AttrConnectionID, id))
		}
		req := map[string]types.KeysAndAttributes{s.connections: {
			Keys: keys, ConsistentRead: aws.Bool(true),
			ProjectionExpression: routeProjection.Projection(), ExpressionAttributeNames: routeProjection.Names(),
		}}
		for attempt := 0; len(req) > 0 && len(req[s.connections].Keys) > 0; attempt++ {
			if attempt > 0 {
				if err := sleepCtx(ctx, time.Duration(attempt)*10*time.Millisecond); err != nil {
					return nil, opError(op, "", err)
				}
			}
			res, err := bg.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, opError(op, "", err)
			}
			for _, item := range res.Responses[s.connections] {
				var it routeItem
				if err := attributevalue.UnmarshalMap(item, &it); err != nil {
					return nil, opError(op, it.ConnectionID, err)
				}
				if it.TTL > 0 && it.TTL <= now {
					continue
				}
				lastPing, err := parseTime(AttrLastPing, it.LastPing)
				if err != nil {
					return nil, opError(op, it.ConnectionID, err)
				}
				out[it.ConnectionID] = store.Route{Endpoint: it.Endpoint, LastPing: lastPing}
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

func (s *Store) getRoutesOneByOne(ctx context.Context, ids []string, out map[string]store.Route) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan string)
	)
	for range min(routeReaders, len(ids)) {
		wg.Go(func() {
			for id := range next {
				r, err := s.GetRoute(ctx, id)
				mu.Lock()
				switch {
				case err == nil:
					out[id] = r
				case !errors.Is(err, store.ErrNotFound) && first == nil:
					first = err
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		if id != "" {
			next <- id
		}
	}
	close(next)
	wg.Wait()
	return first
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
