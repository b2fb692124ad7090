package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/internal/validate"
)

var errAbsent = errors.New("absent or expired")

func isNotFound(err error) bool { return errors.Is(err, errAbsent) }

// Enqueue stores r as a new PENDING request with one PutItem conditioned on
// the ID being free (or held only by an expired record). It sets r.Status,
// r.CreatedAt and r.UpdatedAt and clears r's lease, so r reflects what was
// stored.
func (s *Store) Enqueue(ctx context.Context, r *store.AsyncRequest) error {
	const op = "enqueue"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if err := validate.NewRequest(r); err != nil {
		return opError(op, "", err)
	}
	now := s.clock()
	stored := *r
	stored.Status = store.StatusPending
	stored.CreatedAt, stored.UpdatedAt = now, now
	stored.LeaseOwner, stored.LeaseUntil = "", time.Time{}
	item, err := attributevalue.MarshalMap(toRequestItem(&stored))
	if err != nil {
		return opError(op, r.RequestID, err)
	}
	if n := itemSize(item); n > store.MaxItemBytes {
		return tooLarge(op, r.RequestID, n, nil)
	}
	id := expression.Name(AttrRequestID)
	cond := expression.AttributeNotExists(id).Or(expression.Name(AttrTTL).LessThanEqual(expression.Value(now.Unix())))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return opError(op, r.RequestID, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.requests),
		Item:                      item,
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return sentinel(op, r.RequestID, "", store.ErrAlreadyExists, err)
	}
	if err != nil {
		return opError(op, r.RequestID, err)
	}
	r.Status, r.CreatedAt, r.UpdatedAt = stored.Status, now, now
	r.LeaseOwner, r.LeaseUntil = "", time.Time{}
	return nil
}

// read is a strongly consistent GetItem; errAbsent when the request is
// absent or expired.
func (s *Store) read(ctx context.Context, requestID string) (*store.AsyncRequest, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.requests),
		Key:            stringKey(AttrRequestID, requestID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if out.Item == nil {
		return nil, errAbsent
	}
	r, err := UnmarshalRequest(out.Item)
	if err != nil {
		return nil, err
	}
	if r.Expired(s.clock()) {
		return nil, errAbsent
	}
	return r, nil
}

// GetRequest reads the request with one strongly consistent GetItem.
func (s *Store) GetRequest(ctx context.Context, requestID string) (*store.AsyncRequest, error) {
	const op = "get request"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if requestID == "" {
		return nil, invalid(op, "", "empty request id")
	}
	r, err := s.read(ctx, requestID)
	if isNotFound(err) {
		return nil, sentinel(op, requestID, "", store.ErrNotFound, nil)
	}
	if err != nil {
		return nil, opError(op, requestID, err)
	}
	return r, nil
}

func statusIs(st store.Status) expression.ConditionBuilder {
	return expression.Name(AttrStatus).Equal(expression.Value(string(st)))
}

// heldBy is the condition that owner holds the request's claim.
func heldBy(owner string, now time.Time) expression.ConditionBuilder {
	return statusIs(store.StatusProcessing).
		And(expression.Name(AttrLeaseOwner).Equal(expression.Value(owner)), live(now))
}

func (s *Store) decode(op, id string, item map[string]types.AttributeValue) (*store.AsyncRequest, error) {
	r, err := UnmarshalRequest(item)
	if err != nil {
		return nil, opError(op, id, err)
	}
	return r, nil
}

// Claim takes a PENDING request with one conditional UpdateItem. If that
// fails it reads the request once: a PROCESSING request whose lease expired
// is taken over with a second UpdateItem, conditioned on the lease still
// being expired, which counts an attempt; anything else is ErrConflict (or
// ErrNotFound).
func (s *Store) Claim(ctx context.Context, requestID, owner string, lease time.Duration) (*store.AsyncRequest, error) {
	const op = "claim"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return nil, opError(op, requestID, err)
	}
	if lease <= 0 {
		return nil, invalid(op, requestID, "lease must be positive")
	}
	now := s.clock()
	t := transition{
		op: op, id: requestID,
		cond: statusIs(store.StatusPending).And(live(now)),
		set: map[string]any{
			AttrStatus:     string(store.StatusProcessing),
			AttrLeaseOwner: owner,
			AttrLeaseUntil: formatTime(now.Add(lease)),
			AttrStartedAt:  formatTime(now),
			AttrUpdatedAt:  formatTime(now),
		},
	}
	setActive(t.set, requestID, now.Add(lease), store.StatusProcessing)
	item, err := s.apply(ctx, t)
	if err == nil {
		return s.decode(op, requestID, item)
	}
	if !conditionFailed(err) {
		return nil, err
	}
	cur, rerr := s.read(ctx, requestID)
	switch {
	case isNotFound(rerr):
		return nil, sentinel(op, requestID, "", store.ErrNotFound, err)
	case rerr != nil:
		return nil, opError(op, requestID, rerr)
	case cur.Status != store.StatusProcessing:
		return nil, sentinel(op, requestID, "status "+string(cur.Status), store.ErrConflict, err)
	case cur.LeaseUntil.After(now):
		return nil, sentinel(op, requestID, "leased by "+quote(cur.LeaseOwner)+" until "+formatTime(cur.LeaseUntil), store.ErrConflict, err)
	}
	// Take-over. A concurrent claimer or a renewal moves lease_until past
	// now, so at most one take-over succeeds.
	leaseUntil := expression.Name(AttrLeaseUntil)
	t.cond = statusIs(store.StatusProcessing).And(
		expression.AttributeNotExists(leaseUntil).Or(leaseUntil.LessThanEqual(expression.Value(formatTime(now)))),
		live(now))
	t.inc = AttrAttempts
	// A new attempt starts from nothing: the lost run's progress is not
	// its own.
	t.set[AttrProgress] = 0
	t.remove = []string{AttrProgressMessage}
	return s.run(ctx, t)
}

// run applies a transition; a failed condition is classified into
// ErrNotFound or ErrConflict.
func (s *Store) run(ctx context.Context, t transition) (*store.AsyncRequest, error) {
	item, err := s.apply(ctx, t)
	if conditionFailed(err) {
		return nil, s.classify(ctx, t.op, t.id, err)
	}
	if err != nil {
		return nil, err
	}
	return s.decode(t.op, t.id, item)
}

// RenewLease extends owner's claim with one conditional UpdateItem.
func (s *Store) RenewLease(ctx context.Context, requestID, owner string, lease time.Duration) error {
	const op = "renew lease"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return opError(op, requestID, err)
	}
	if lease <= 0 {
		return invalid(op, requestID, "lease must be positive")
	}
	now := s.clock()
	t := transition{
		op: op, id: requestID,
		cond: heldBy(owner, now),
		set: map[string]any{
			AttrLeaseUntil: formatTime(now.Add(lease)),
			AttrUpdatedAt:  formatTime(now),
		},
	}
	setActive(t.set, requestID, now.Add(lease), store.StatusProcessing)
	_, err := s.run(ctx, t)
	return err
}

// UpdateProgress records progress with one conditional UpdateItem.
func (s *Store) UpdateProgress(ctx context.Context, requestID, owner string, percent float64, message string) error {
	const op = "update progress"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return opError(op, requestID, err)
	}
	if err := validate.Percent(percent); err != nil {
		return opError(op, requestID, err)
	}
	now := s.clock()
	t := transition{
		op: op, id: requestID,
		cond: heldBy(owner, now),
		set: map[string]any{
			AttrProgress:  percent,
			AttrUpdatedAt: formatTime(now),
		},
	}
	if message != "" {
		t.set[AttrProgressMessage] = message
	} else {
		t.remove = []string{AttrProgressMessage}
	}
	_, err := s.run(ctx, t)
	return err
}

// leased are the attributes of a claim, removed when it ends.
var leased = []string{AttrLeaseOwner, AttrLeaseUntil}

// finished are the attributes a terminal transition removes: the claim,
// and the keys that put an active request in IndexRequestsToSweep.
var finished = append(append([]string(nil), leased...), AttrSweepShard, AttrSweepKey)

// Complete stores the result and moves the request to COMPLETED (Progress
// 100) with one conditional UpdateItem.
func (s *Store) Complete(ctx context.Context, requestID, owner string, result json.RawMessage) (*store.AsyncRequest, error) {
	const op = "complete"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return nil, opError(op, requestID, err)
	}
	if !validate.JSON(result) {
		return nil, invalid(op, requestID, "result is not valid JSON")
	}
	now := s.clock()
	t := transition{
		op: op, id: requestID,
		cond: heldBy(owner, now),
		set: map[string]any{
			AttrStatus:      string(store.StatusCompleted),
			AttrProgress:    100,
			AttrCompletedAt: formatTime(now),
			AttrUpdatedAt:   formatTime(now),
		},
		remove: finished,
	}
	if len(result) > 0 {
		t.set[AttrResult] = string(result)
	} else {
		t.remove = append([]string{AttrResult}, finished...)
	}
	return s.run(ctx, t)
}

func errorValue(e store.RequestError) *errorItem {
	return &errorItem{Code: e.Code, Message: e.Message}
}

// Fail stores the error and moves the request to FAILED with one
// conditional UpdateItem.
func (s *Store) Fail(ctx context.Context, requestID, owner string, reqErr store.RequestError) (*store.AsyncRequest, error) {
	const op = "fail"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return nil, opError(op, requestID, err)
	}
	if reqErr.Code == "" {
		return nil, invalid(op, requestID, "empty error code")
	}
	now := s.clock()
	return s.run(ctx, transition{
		op: op, id: requestID,
		cond: heldBy(owner, now),
		set: map[string]any{
			AttrStatus:      string(store.StatusFailed),
			AttrError:       errorValue(reqErr),
			AttrCompletedAt: formatTime(now),
			AttrUpdatedAt:   formatTime(now),
		},
		remove: finished,
	})
}

// Requeue counts a failed attempt. It first tries the retry (back to
// PENDING) with one UpdateItem conditioned on Attempts+1 < maxAttempts;
// when that condition fails it reads the request and, if the attempts are
// used up, moves it to FAILED with a second UpdateItem conditioned on the
// attempts it read. reqErr is kept as the request's last error.
func (s *Store) Requeue(ctx context.Context, requestID, owner string, reqErr store.RequestError, maxAttempts int) (*store.AsyncRequest, error) {
	const op = "requeue"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return nil, opError(op, requestID, err)
	}
	if reqErr.Code == "" {
		return nil, invalid(op, requestID, "empty error code")
	}
	if maxAttempts < 1 {
		return nil, invalid(op, requestID, "maxAttempts must be at least 1")
	}
	now := s.clock()
	attempts := expression.Name(AttrAttempts)
	retry := transition{
		op: op, id: requestID,
		cond: heldBy(owner, now).And(
			expression.AttributeNotExists(attempts).Or(attempts.LessThan(expression.Value(maxAttempts - 1)))),
		set: map[string]any{
			AttrStatus:    string(store.StatusPending),
			AttrError:     errorValue(reqErr),
			AttrUpdatedAt: formatTime(now),
			// The next attempt starts from nothing.
			AttrProgress: 0,
		},
		remove: append(slices.Clone(leased), AttrProgressMessage),
		inc:    AttrAttempts,
	}
	setActive(retry.set, requestID, now, store.StatusPending)
	item, err := s.apply(ctx, retry)
	if err == nil {
		return s.decode(op, requestID, item)
	}
	if !conditionFailed(err) {
		return nil, err
	}
	cur, rerr := s.read(ctx, requestID)
	switch {
	case isNotFound(rerr):
		return nil, sentinel(op, requestID, "", store.ErrNotFound, err)
	case rerr != nil:
		return nil, opError(op, requestID, rerr)
	case cur.Status != store.StatusProcessing:
		return nil, sentinel(op, requestID, "status "+string(cur.Status), store.ErrConflict, err)
	case cur.LeaseOwner != owner:
		return nil, sentinel(op, requestID, "leased by "+quote(cur.LeaseOwner), store.ErrConflict, err)
	case cur.Attempts+1 < maxAttempts:
		// Held by owner with attempts left, yet the retry failed: the
		// record changed between the two calls.
		return nil, sentinel(op, requestID, "changed concurrently", store.ErrConflict, err)
	}
	return s.run(ctx, transition{
		op: op, id: requestID,
		cond: heldBy(owner, now).And(attempts.Equal(expression.Value(cur.Attempts))),
		set: map[string]any{
			AttrStatus:      string(store.StatusFailed),
			AttrError:       errorValue(reqErr),
			AttrCompletedAt: formatTime(now),
			AttrUpdatedAt:   formatTime(now),
			AttrAttempts:    cur.Attempts + 1,
		},
		remove: finished,
	})
}

// Rebind makes connectionID the request's connection with one
// conditional UpdateItem.
func (s *Store) Rebind(ctx context.Context, requestID, connectionID string) error {
	const op = "rebind"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if requestID == "" || connectionID == "" {
		return invalid(op, requestID, "empty request or connection id")
	}
	now := s.clock()
	_, err := s.run(ctx, transition{
		op: op, id: requestID,
		cond: expression.AttributeExists(expression.Name(AttrRequestID)).And(live(now)),
		set:  map[string]any{AttrConnectionID: connectionID},
	})
	return err
}

// Cancel moves a PENDING or PROCESSING request to CANCELLED with one
// conditional UpdateItem. The worker holding it learns of it from its next
// UpdateProgress, RenewLease or Complete (ErrConflict).
func (s *Store) Cancel(ctx context.Context, requestID string) (*store.AsyncRequest, error) {
	const op = "cancel"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if requestID == "" {
		return nil, invalid(op, "", "empty request id")
	}
	now := s.clock()
	return s.run(ctx, transition{
		op: op, id: requestID,
		cond: statusIs(store.StatusPending).Or(statusIs(store.StatusProcessing)).And(live(now)),
		set: map[string]any{
			AttrStatus:      string(store.StatusCancelled),
			AttrCompletedAt: formatTime(now),
			AttrUpdatedAt:   formatTime(now),
		},
		remove: finished,
	})
}
