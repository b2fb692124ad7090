package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
)

// ListRequestsByConnection queries IndexRequestsByConnection, oldest first.
func (s *Store) ListRequestsByConnection(ctx context.Context, connectionID string, limit int, cursor string) ([]*store.AsyncRequest, string, error) {
	return s.listRequests(ctx, "list requests by connection", IndexRequestsByConnection, AttrConnectionID, connectionID, limit, cursor)
}

// ListRequestsByUser queries IndexRequestsByUser, oldest first.
func (s *Store) ListRequestsByUser(ctx context.Context, userID string, limit int, cursor string) ([]*store.AsyncRequest, string, error) {
	return s.listRequests(ctx, "list requests by user", IndexRequestsByUser, AttrUserID, userID, limit, cursor)
}

// listRequests fills one page of up to limit live requests. Expired items
// are filtered by the server, after Limit counts them, so a page may take
// several Query calls; the cursor is the last LastEvaluatedKey, opaque to
// the caller. The next cursor may lead to an empty last page.
func (s *Store) listRequests(ctx context.Context, op, index, attr, key string, limit int, cursor string) ([]*store.AsyncRequest, string, error) {
	if err := checkCtx(ctx, op); err != nil {
		return nil, "", err
	}
	if key == "" {
		return nil, "", invalid(op, "", "empty key")
	}
	var start map[string]types.AttributeValue
	if cursor != "" {
		var ok bool
		if start, ok = decodeCursor(cursor, attr, key); !ok {
			return nil, "", invalid(op, key, "malformed cursor")
		}
	}
	limit = s.queryLimit(limit)
	now := s.clock()
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(attr).Equal(expression.Value(key))).
		WithFilter(live(now)).
		Build()
	if err != nil {
		return nil, "", opError(op, key, err)
	}
	page := make([]*store.AsyncRequest, 0, min(limit, 64))
	for {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.requests),
			IndexName:                 aws.String(index),
			KeyConditionExpression:    expr.KeyCondition(),
			FilterExpression:          expr.Filter(),
			ExpressionAttributeNames:  expr.Names(),
			ExpressionAttributeValues: expr.Values(),
			ExclusiveStartKey:         start,
			Limit:                     aws.Int32(int32(limit - len(page))),
			ScanIndexForward:          aws.Bool(true),
		})
		if err != nil {
			return nil, "", opError(op, key, err)
		}
		for _, item := range out.Items {
			r, err := UnmarshalRequest(item)
			if err != nil {
				return nil, "", opError(op, key, err)
			}
			if !r.Expired(now) {
				page = append(page, r)
			}
		}
		start = out.LastEvaluatedKey
		if len(start) == 0 {
			return page, "", nil
		}
		if len(page) >= limit {
			return page, encodeCursor(start), nil
		}
	}
}

// queryLimit is the page size for a caller's limit: the default for
// limit <= 0, and at most what a Query's Limit (an int32) can carry, so
// that "give me everything" (math.MaxInt) does not wrap to a negative
// Limit that DynamoDB refuses.
func (s *Store) queryLimit(limit int) int {
	if limit <= 0 {
		return s.pageSize
	}
	return min(limit, math.MaxInt32)
}

// encodeCursor renders a LastEvaluatedKey, whose attributes in this schema
// are all strings, as base64 of a JSON object.
func encodeCursor(key map[string]types.AttributeValue) string {
	plain := make(map[string]string, len(key))
	for k, v := range key {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			plain[k] = s.Value
		}
	}
	b, _ := json.Marshal(plain) // cannot fail: map of strings
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor from encodeCursor and checks that it belongs
// to this list: it must name the same index key and carry a full position.
func decodeCursor(cursor, attr, key string) (map[string]types.AttributeValue, bool) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, false
	}
	var plain map[string]string
	if json.Unmarshal(b, &plain) != nil || plain[attr] != key || plain[AttrRequestID] == "" || plain[AttrCreatedAt] == "" {
		return nil, false
	}
	out := make(map[string]types.AttributeValue, len(plain))
	for k, v := range plain {
		switch k {
		case attr, AttrRequestID, AttrCreatedAt:
			out[k] = &types.AttributeValueMemberS{Value: v}
		default:
			return nil, false
		}
	}
	return out, true
}
