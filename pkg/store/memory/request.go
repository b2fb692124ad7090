package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/streamer-go/streamer/pkg/store"
	"github.com/streamer-go/streamer/pkg/store/internal/validate"
)

func cloneRequest(r *store.AsyncRequest) *store.AsyncRequest {
	out := *r
	out.Payload = slices.Clone(r.Payload)
	out.Result = slices.Clone(r.Result)
	out.Permissions = slices.Clone(r.Permissions)
	if r.Error != nil {
		e := *r.Error
		out.Error = &e
	}
	out.LeaseUntil = normal(r.LeaseUntil)
	out.CreatedAt = normal(r.CreatedAt)
	out.UpdatedAt = normal(r.UpdatedAt)
	out.StartedAt = normal(r.StartedAt)
	out.CompletedAt = normal(r.CompletedAt)
	return &out
}

// Enqueue stores a copy of r as a new PENDING request. It sets r.Status,
// r.CreatedAt and r.UpdatedAt and clears r's lease, so r reflects what was
// stored. A live request with the same ID fails with ErrAlreadyExists; an
// expired one is replaced, since reads no longer see it.
func (s *Store) Enqueue(ctx context.Context, r *store.AsyncRequest) error {
	const op = "enqueue"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if err := validate.NewRequest(r); err != nil {
		return opError(op, "", err)
	}
	if n := requestSize(r); n > store.MaxItemBytes {
		return opError(op, r.RequestID, sizeError(n))
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.reqs[r.RequestID]; ok && !old.Expired(now) {
		return opError(op, r.RequestID, store.ErrAlreadyExists)
	}
	r.Status = store.StatusPending
	r.CreatedAt, r.UpdatedAt = now, now
	r.LeaseOwner, r.LeaseUntil = "", time.Time{}
	s.reqs[r.RequestID] = cloneRequest(r)
	s.noteInsert(now)
	return nil
}

// GetRequest returns a copy of the request, or ErrNotFound if it is absent
// or expired.
func (s *Store) GetRequest(ctx context.Context, requestID string) (*store.AsyncRequest, error) {
	const op = "get request"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if requestID == "" {
		return nil, invalid(op, "", "empty request id")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(requestID, now)
	if !ok {
		return nil, notFound(op, requestID)
	}
	return cloneRequest(r), nil
}

// live returns the stored, unexpired request. s.mu must be held.
func (s *Store) live(requestID string, now time.Time) (*store.AsyncRequest, bool) {
	r, ok := s.reqs[requestID]
	if !ok || r.Expired(now) {
		return nil, false
	}
	return r, true
}

// Claim moves a PENDING request, or a PROCESSING one whose lease expired, to
// PROCESSING under owner. Taking over an expired lease counts an attempt.
func (s *Store) Claim(ctx context.Context, requestID, owner string, lease time.Duration) (*store.AsyncRequest, error) {
	const op = "claim"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return nil, opError(op, requestID, err)
	}
	if !validLease(lease) {
		return nil, invalid(op, requestID, "lease must be positive")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(requestID, now)
	if !ok {
		return nil, notFound(op, requestID)
	}
	switch {
	case r.Status == store.StatusPending:
	case r.Status == store.StatusProcessing && !r.LeaseUntil.After(now):
		// A take-over is a new attempt, which starts from nothing.
		r.Attempts++
		r.Progress, r.ProgressMessage = 0, ""
	case r.Status == store.StatusProcessing:
		return nil, conflict(op, requestID, fmt.Sprintf("leased by %q until %s", r.LeaseOwner, r.LeaseUntil.Format(time.RFC3339Nano)))
	default:
		return nil, conflict(op, requestID, "status "+string(r.Status))
	}
	r.Status = store.StatusProcessing
	r.LeaseOwner, r.LeaseUntil = owner, now.Add(lease)
	r.StartedAt, r.UpdatedAt = now, now
	return cloneRequest(r), nil
}

// owned returns the request if it is PROCESSING under owner. s.mu must be
// held.
func (s *Store) owned(op, requestID, owner string, now time.Time) (*store.AsyncRequest, error) {
	r, ok := s.live(requestID, now)
	if !ok {
		return nil, notFound(op, requestID)
	}
	if r.Status != store.StatusProcessing {
		return nil, conflict(op, requestID, "status "+string(r.Status))
	}
	if r.LeaseOwner != owner {
		return nil, conflict(op, requestID, fmt.Sprintf("lease held by %q, not %q", r.LeaseOwner, owner))
	}
	return r, nil
}

// RenewLease extends owner's claim to now+lease.
func (s *Store) RenewLease(ctx context.Context, requestID, owner string, lease time.Duration) error {
	const op = "renew lease"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return opError(op, requestID, err)
	}
	if !validLease(lease) {
		return invalid(op, requestID, "lease must be positive")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.owned(op, requestID, owner, now)
	if err != nil {
		return err
	}
	r.LeaseUntil, r.UpdatedAt = now.Add(lease), now
	return nil
}

// UpdateProgress records progress while PROCESSING under owner.
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
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.owned(op, requestID, owner, now)
	if err != nil {
		return err
	}
	next := *r
	next.ProgressMessage = message
	if n := requestSize(&next); n > store.MaxItemBytes {
		return opError(op, requestID, sizeError(n))
	}
	r.Progress, r.ProgressMessage, r.UpdatedAt = percent, message, now
	return nil
}

// Complete stores the result and moves the request to COMPLETED with
// Progress 100.
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
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.owned(op, requestID, owner, now)
	if err != nil {
		return nil, err
	}
	next := *r
	next.Result = result
	if n := requestSize(&next); n > store.MaxItemBytes {
		return nil, opError(op, requestID, sizeError(n))
	}
	r.Status, r.Result, r.Progress = store.StatusCompleted, slices.Clone(result), 100
	s.finish(r, now)
	return cloneRequest(r), nil
}

// finish ends the claim of a request that reached a terminal state.
func (s *Store) finish(r *store.AsyncRequest, now time.Time) {
	r.LeaseOwner, r.LeaseUntil = "", time.Time{}
	r.CompletedAt, r.UpdatedAt = now, now
}

func validateRequestError(op, requestID string, e store.RequestError) error {
	if e.Code == "" {
		return invalid(op, requestID, "empty error code")
	}
	return nil
}

// Fail stores the error and moves the request to FAILED.
func (s *Store) Fail(ctx context.Context, requestID, owner string, reqErr store.RequestError) (*store.AsyncRequest, error) {
	const op = "fail"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return nil, opError(op, requestID, err)
	}
	if err := validateRequestError(op, requestID, reqErr); err != nil {
		return nil, err
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.owned(op, requestID, owner, now)
	if err != nil {
		return nil, err
	}
	next := *r
	next.Error = &reqErr
	if n := requestSize(&next); n > store.MaxItemBytes {
		return nil, opError(op, requestID, sizeError(n))
	}
	r.Status, r.Error = store.StatusFailed, &reqErr
	s.finish(r, now)
	return cloneRequest(r), nil
}

// Requeue counts a failed attempt and puts the request back to PENDING, or
// to FAILED once Attempts reaches maxAttempts. reqErr is kept as the
// request's last error either way.
func (s *Store) Requeue(ctx context.Context, requestID, owner string, reqErr store.RequestError, maxAttempts int) (*store.AsyncRequest, error) {
	const op = "requeue"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if err := validate.Owned(requestID, owner); err != nil {
		return nil, opError(op, requestID, err)
	}
	if err := validateRequestError(op, requestID, reqErr); err != nil {
		return nil, err
	}
	if maxAttempts < 1 {
		return nil, invalid(op, requestID, "maxAttempts must be at least 1")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.owned(op, requestID, owner, now)
	if err != nil {
		return nil, err
	}
	next := *r
	next.Error = &reqErr
	if n := requestSize(&next); n > store.MaxItemBytes {
		return nil, opError(op, requestID, sizeError(n))
	}
	r.Attempts++
	r.Error = &reqErr
	if r.Attempts < maxAttempts {
		r.Status = store.StatusPending
		r.LeaseOwner, r.LeaseUntil = "", time.Time{}
		r.Progress, r.ProgressMessage = 0, "" // the next attempt starts from nothing
		r.UpdatedAt = now
	} else {
		r.Status = store.StatusFailed
		s.finish(r, now)
	}
	return cloneRequest(r), nil
}

// Rebind makes connectionID the request's connection.
func (s *Store) Rebind(ctx context.Context, requestID, connectionID string) error {
	const op = "rebind"
	if err := checkCtx(ctx, op); err != nil {
		return err
	}
	if requestID == "" || connectionID == "" {
		return invalid(op, requestID, "empty request or connection id")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(requestID, now)
	if !ok {
		return notFound(op, requestID)
	}
	r.ConnectionID = connectionID
	return nil
}

// Cancel moves a PENDING or PROCESSING request to CANCELLED.
func (s *Store) Cancel(ctx context.Context, requestID string) (*store.AsyncRequest, error) {
	const op = "cancel"
	if err := checkCtx(ctx, op); err != nil {
		return nil, err
	}
	if requestID == "" {
		return nil, invalid(op, "", "empty request id")
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(requestID, now)
	if !ok {
		return nil, notFound(op, requestID)
	}
	if r.Status.Terminal() {
		return nil, conflict(op, requestID, "status "+string(r.Status))
	}
	r.Status = store.StatusCancelled
	s.finish(r, now)
	return cloneRequest(r), nil
}
