package dynamo

import (
	"context"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
)

// transition is one conditional UpdateItem on a request: the condition
// says which states allow it, the rest says what it writes.
type transition struct {
	op, id string
	cond   expression.ConditionBuilder
	set    map[string]any // attribute → Go value, marshalled by attributevalue
	remove []string
	inc    string // attribute to increment by one, if any
}

// apply runs t as one UpdateItem and returns the new item. A failed
// condition comes back as the SDK's bare error, for the caller to classify;
// every other error is already wrapped.
func (s *Store) apply(ctx context.Context, t transition) (map[string]types.AttributeValue, error) {
	setAV := make(map[string]types.AttributeValue, len(t.set))
	var update expression.UpdateBuilder
	for _, name := range slices.Sorted(maps.Keys(t.set)) {
		av, err := attributevalue.Marshal(t.set[name])
		if err != nil {
			return nil, opError(t.op, t.id, err)
		}
		setAV[name] = av
		update = update.Set(expression.Name(name), expression.Value(av))
	}
	for _, name := range t.remove {
		update = update.Remove(expression.Name(name))
	}
	if t.inc != "" {
		update = update.Add(expression.Name(t.inc), expression.Value(1))
	}
	// The written attributes alone may already be too large: refuse
	// without a call.
	written := maps.Clone(setAV)
	written[AttrRequestID] = &types.AttributeValueMemberS{Value: t.id}
	if n := itemSize(written); n > store.MaxItemBytes {
		return nil, tooLarge(t.op, t.id, n, nil)
	}
	expr, err := expression.NewBuilder().WithCondition(t.cond).WithUpdate(update).Build()
	if err != nil {
		return nil, opError(t.op, t.id, err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.requests),
		Key:                       stringKey(AttrRequestID, t.id),
		ConditionExpression:       expr.Condition(),
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ReturnValues:              types.ReturnValueAllNew,
	})
	if validationFailed(err) {
		return nil, s.sizeOrError(ctx, t, setAV, err)
	}
	if err != nil && !conditionFailed(err) {
		return nil, opError(t.op, t.id, err)
	}
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// sizeOrError explains a ValidationException: DynamoDB refuses an update
// that would push the item over 400 KB, and says so only in the message
// text, which we do not match. Instead, read the item and compute the size
// it would have had. One extra GetItem, on a failure path only.
func (s *Store) sizeOrError(ctx context.Context, t transition, setAV map[string]types.AttributeValue, cause error) error {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.requests),
		Key:            stringKey(AttrRequestID, t.id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		return opError(t.op, t.id, cause)
	}
	projected := maps.Clone(out.Item)
	maps.Copy(projected, setAV)
	for _, name := range t.remove {
		delete(projected, name)
	}
	if n := itemSize(projected); n > store.MaxItemBytes {
		return tooLarge(t.op, t.id, n, cause)
	}
	return opError(t.op, t.id, cause)
}

// classify turns a failed condition into ErrNotFound or ErrConflict by
// reading the item once (strongly consistent). dynalite does not support
// ReturnValuesOnConditionCheckFailure, which would save this read.
func (s *Store) classify(ctx context.Context, op, id string, cause error) error {
	r, err := s.read(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return sentinel(op, id, "", store.ErrNotFound, cause)
		}
		return opError(op, id, err)
	}
	why := "status " + string(r.Status)
	if r.Status == store.StatusProcessing {
		why = "leased by " + quote(r.LeaseOwner) + " until " + formatTime(r.LeaseUntil)
	}
	return sentinel(op, id, why, store.ErrConflict, cause)
}

func quote(s string) string { return `"` + s + `"` }
