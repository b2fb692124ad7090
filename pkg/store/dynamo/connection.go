package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/internal/validate"
)

func stringKey(attr, v string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attr: &types.AttributeValueMemberS{Value: v}}
}

// live is the condition that an item has not expired at now. An item whose
// TTL passed is gone for every read and write, even before DynamoDB's TTL
// sweeper deletes it.
func live(now time.Time) expression.ConditionBuilder {
	ttl := expression.Name(AttrTTL)
	return expression.AttributeNotExists(ttl).Or(ttl.GreaterThan(expression.Value(now.Unix())))
}

// Save creates or replaces the connection with one PutItem.
func (s *Store) Save(ctx context.Context, c *store.Connection) error {
	const op = "save connection"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if err := validate.Connection(c); err != nil {
		return opError(op, "", err)
	}
	item, err := attributevalue.MarshalMap(toConnectionItem(c))
	if err != nil {
		return opError(op, c.ConnectionID, err)
	}
	if n := itemSize(item); n > store.MaxItemBytes {
		return tooLarge(op, c.ConnectionID, n, nil)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.connections), Item: item})
	if err != nil {
		return opError(op, c.ConnectionID, err)
	}
	return nil
}

// Get reads the connection with one strongly consistent GetItem.
func (s *Store) Get(ctx context.Context, connectionID string) (*store.Connection, error) {
	const op = "get connection"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if connectionID == "" {
		return nil, invalid(op, "", "empty connection id")
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.connections),
		Key:            stringKey(AttrConnectionID, connectionID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, opError(op, connectionID, err)
	}
	if out.Item == nil {
		return nil, sentinel(op, connectionID, "", store.ErrNotFound, nil)
	}
	c, err := unmarshalConnection(out.Item)
	if err != nil {
		return nil, opError(op, connectionID, err)
	}
	if c.Expired(s.clock()) {
		return nil, sentinel(op, connectionID, "expired", store.ErrNotFound, nil)
	}
	return c, nil
}

// routeItem is the projection GetRoute reads: the key, so that an item
// without the other attributes is still found, and what a send needs.
type routeItem struct {
	ConnectionID string `dynamodbav:"connection_id"`
	Endpoint     string `dynamodbav:"endpoint,omitempty"`
	LastPing     string `dynamodbav:"last_ping,omitempty"`
	TTL          int64  `dynamodbav:"ttl,omitempty"`
}

// routeProjection names routeItem's attributes ("ttl" is a reserved
// word, so every name goes through a placeholder).
var routeProjection = func() expression.Expression {
	e, err := expression.NewBuilder().WithProjection(expression.NamesList(
		expression.Name(AttrConnectionID), expression.Name(AttrEndpoint),
		expression.Name(AttrLastPing), expression.Name(AttrTTL))).Build()
	if err != nil {
		panic(err) // constant input
	}
	return e
}()

// GetRoute reads the connection's Endpoint and LastPing with one
// consistent GetItem projected to them, with the errors of Get.
func (s *Store) GetRoute(ctx context.Context, connectionID string) (store.Route, error) {
	const op = "get connection"
	if err := checkCtx(ctx, op); err != nil {
		return store.Route{}, err
	}
	if connectionID == "" {
		return store.Route{}, invalid(op, "", "empty connection id")
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.connections),
		Key:                      stringKey(AttrConnectionID, connectionID),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     routeProjection.Projection(),
		ExpressionAttributeNames: routeProjection.Names(),
	})
	if err != nil {
		return store.Route{}, opError(op, connectionID, err)
	}
	if len(out.Item) == 0 {
		return store.Route{}, sentinel(op, connectionID, "", store.ErrNotFound, nil)
	}
	var it routeItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return store.Route{}, opError(op, connectionID, fmt.Errorf("dynamo: decode connection: %w", err))
	}
	if it.TTL > 0 && it.TTL <= s.clock().Unix() {
		return store.Route{}, sentinel(op, connectionID, "expired", store.ErrNotFound, nil)
	}
	lastPing, err := parseTime(AttrLastPing, it.LastPing)
	if err != nil {
		return store.Route{}, opError(op, connectionID, err)
	}
	return store.Route{Endpoint: it.Endpoint, LastPing: lastPing}, nil
}

// Delete removes the connection with one DeleteItem.
func (s *Store) Delete(ctx context.Context, connectionID string) error {
	const op = "delete connection"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if connectionID == "" {
		return invalid(op, "", "empty connection id")
	}
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.connections),
		Key:       stringKey(AttrConnectionID, connectionID),
	})
	if err != nil {
		return opError(op, connectionID, err)
	}
	return nil
}

// ListByUser queries IndexConnectionsByUser, one Query per page.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]*store.Connection, error) {
	return s.listConnections(ctx, "list connections by user", IndexConnectionsByUser, AttrUserID, userID)
}

// ListByTenant queries IndexConnectionsByTenant, one Query per page.
func (s *Store) ListByTenant(ctx context.Context, tenantID string) ([]*store.Connection, error) {
	return s.listConnections(ctx, "list connections by tenant", IndexConnectionsByTenant, AttrTenantID, tenantID)
}

func (s *Store) listConnections(ctx context.Context, op, index, attr, key string) ([]*store.Connection, error) {
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, invalid(op, "", "empty key")
	}
	now := s.clock()
	expr, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(attr).Equal(expression.Value(key))).
		WithFilter(live(now)).
		Build()
	if err != nil {
		return nil, opError(op, key, err)
	}
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName:                 aws.String(s.connections),
		IndexName:                 aws.String(index),
		KeyConditionExpression:    expr.KeyCondition(),
		FilterExpression:          expr.Filter(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		Limit:                     aws.Int32(int32(s.pageSize)),
	})
	var out []*store.Connection
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, opError(op, key, err)
		}
		for _, item := range page.Items {
			c, err := unmarshalConnection(item)
			if err != nil {
				return nil, opError(op, key, err)
			}
			if !c.Expired(now) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// UpdateLastPing sets LastPing with one conditional UpdateItem that fails
// (ErrNotFound) when the connection is absent or expired, so a late ping
// never resurrects a deleted connection.
func (s *Store) UpdateLastPing(ctx context.Context, connectionID string, at time.Time) error {
	const op = "update last ping"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if connectionID == "" {
		return invalid(op, "", "empty connection id")
	}
	update := expression.Set(expression.Name(AttrLastPing), expression.Value(formatTime(at)))
	if at.IsZero() {
		update = expression.Remove(expression.Name(AttrLastPing))
	}
	cond := expression.AttributeExists(expression.Name(AttrConnectionID)).And(live(s.clock()))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(update).Build()
	if err != nil {
		return opError(op, connectionID, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.connections),
		Key:                       stringKey(AttrConnectionID, connectionID),
		ConditionExpression:       expr.Condition(),
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return sentinel(op, connectionID, "", store.ErrNotFound, err)
	}
	if err != nil {
		return opError(op, connectionID, err)
	}
	return nil
}

// staleCondition holds for a connection last seen before the cutoff
// (LastPing, or ConnectedAt when never pinged) or expired at now.
func staleCondition(before, now time.Time) expression.ConditionBuilder {
	cutoff := expression.Value(formatTime(before))
	lastPing, connectedAt := expression.Name(AttrLastPing), expression.Name(AttrConnectedAt)
	pingedLongAgo := lastPing.LessThan(cutoff)
	neverPinged := expression.AttributeNotExists(lastPing).And(
		expression.AttributeNotExists(connectedAt).Or(connectedAt.LessThan(cutoff)))
	expired := expression.Name(AttrTTL).LessThanEqual(expression.Value(now.Unix()))
	return pingedLongAgo.Or(neverPinged, expired)
}

// DeleteStale scans the connections table for stale or expired connections
// and deletes each with a DeleteItem conditioned on it still being stale,
// so a connection that pinged during the sweep survives. Cost: one Scan
// per page plus one DeleteItem per stale connection.
func (s *Store) DeleteStale(ctx context.Context, before time.Time) (int, error) {
	const op = "delete stale connections"
	if err := checkCtx(ctx, op); err != nil {
		return 0, err
	}
	now := s.clock()
	stale := staleCondition(before, now)
	scanExpr, err := expression.NewBuilder().
		WithFilter(stale).
		WithProjection(expression.NamesList(expression.Name(AttrConnectionID))).
		Build()
	if err != nil {
		return 0, opError(op, "", err)
	}
	delExpr, err := expression.NewBuilder().WithCondition(stale).Build()
	if err != nil {
		return 0, opError(op, "", err)
	}
	p := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{
		TableName:                 aws.String(s.connections),
		FilterExpression:          scanExpr.Filter(),
		ProjectionExpression:      scanExpr.Projection(),
		ExpressionAttributeNames:  scanExpr.Names(),
		ExpressionAttributeValues: scanExpr.Values(),
		Limit:                     aws.Int32(int32(s.pageSize)),
		ConsistentRead:            aws.Bool(true),
	})
	removed := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return removed, opError(op, "", err)
		}
		for _, item := range page.Items {
			id, ok := item[AttrConnectionID].(*types.AttributeValueMemberS)
			if !ok {
				continue
			}
			_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 aws.String(s.connections),
				Key:                       stringKey(AttrConnectionID, id.Value),
				ConditionExpression:       delExpr.Condition(),
				ExpressionAttributeNames:  delExpr.Names(),
				ExpressionAttributeValues: delExpr.Values(),
			})
			switch {
			case conditionFailed(err):
				// Pinged or re-saved since the scan: no longer stale.
			case err != nil:
				return removed, opError(op, id.Value, err)
			default:
				removed++
			}
		}
	}
	return removed, nil
}
