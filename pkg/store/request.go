package store

import (
	"context"
	"encoding/json"
	"time"
)

// MaxItemBytes is the largest record a store accepts, DynamoDB's item
// limit. Both stores refuse larger records with ErrTooLarge so that code
// tested on the memory store does not fail later on DynamoDB.
const MaxItemBytes = 400 * 1024

// Status is the lifecycle state of an AsyncRequest.
//
//	PENDING ──Claim──▶ PROCESSING ──Complete──▶ COMPLETED
//	   ▲                   │  └──────Fail─────▶ FAILED
//	   └──────Requeue──────┘
//	PENDING or PROCESSING ──Cancel──▶ CANCELLED
//
// A PROCESSING request whose lease expired can be claimed again.
type Status string

// The request statuses.
const (
	StatusPending    Status = "PENDING"
	StatusProcessing Status = "PROCESSING"
	StatusCompleted  Status = "COMPLETED"
	StatusFailed     Status = "FAILED"
	StatusCancelled  Status = "CANCELLED"
)

// Terminal reports whether no further transition is possible.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// RequestError is the error an async request ended with. Code is one of the
// wire protocol's error codes; Message is safe to show to the client.
type RequestError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// AsyncRequest is a request queued by the router and run by a processor.
type AsyncRequest struct {
	RequestID string
	// ClientRequestID is the id the client gave the request; the router
	// derives RequestID from (UserID, ClientRequestID) so a resubmission is
	// detected by Enqueue.
	ClientRequestID string
	ConnectionID    string
	UserID          string
	TenantID        string
	Action          string
	Payload         json.RawMessage
	// Permissions are the sender's permissions when the request was
	// queued (checked then by the router). They are stored with the
	// request so that a handler running later, in another process or
	// Lambda, sees the identity the request was accepted under.
	Permissions []string

	Status          Status
	Progress        float64 // 0–100
	ProgressMessage string
	Result          json.RawMessage
	Error           *RequestError

	// Attempts counts the attempts that failed and were requeued, plus
	// claims taken over from a worker whose lease expired.
	Attempts int
	// LeaseOwner and LeaseUntil describe the current claim.
	LeaseOwner string
	LeaseUntil time.Time

	CreatedAt   time.Time
	UpdatedAt   time.Time
	StartedAt   time.Time
	CompletedAt time.Time
	// TTL is a Unix time in seconds after which the record is invisible to
	// reads. Zero means no expiry; a negative TTL is ErrInvalidInput.
	TTL int64
}

// Expired reports whether the record's TTL has passed at now.
func (r *AsyncRequest) Expired(now time.Time) bool {
	return r.TTL > 0 && r.TTL <= now.Unix()
}

// Stalled reports whether the request needs work that nobody is doing at
// now: it is PENDING and has been since before pendingBefore (its
// dispatch was lost), or PROCESSING under a lease that has expired (its
// worker died). Expired records are never stalled. It is the condition
// ListStalled selects by.
func (r *AsyncRequest) Stalled(now, pendingBefore time.Time) bool {
	if r.Expired(now) {
		return false
	}
	switch r.Status {
	case StatusPending:
		return r.UpdatedAt.Before(pendingBefore)
	case StatusProcessing:
		return !r.LeaseUntil.After(now)
	}
	return false
}

// RequestStore persists async requests. Every transition is one
// conditional write, so concurrent workers never lose an update.
// Implementations are safe for concurrent use.
type RequestStore interface {
	// Enqueue stores a new request with status PENDING, setting CreatedAt
	// and UpdatedAt. A duplicate RequestID fails with ErrAlreadyExists.
	Enqueue(ctx context.Context, r *AsyncRequest) error
	// GetRequest returns the request, or ErrNotFound if absent or expired.
	GetRequest(ctx context.Context, requestID string) (*AsyncRequest, error)
	// Claim moves a PENDING request, or a PROCESSING one whose lease has
	// expired, to PROCESSING with owner holding it for lease. Taking over
	// an expired lease counts an attempt and resets Progress to 0 and
	// ProgressMessage to "", so the stored progress is always the current
	// attempt's. Any other
	// state, or losing the race to another claimer, is ErrConflict.
	Claim(ctx context.Context, requestID, owner string, lease time.Duration) (*AsyncRequest, error)
	// RenewLease extends the owner's claim. ErrConflict if the request is no
	// longer PROCESSING under owner (for instance it was cancelled).
	RenewLease(ctx context.Context, requestID, owner string, lease time.Duration) error
	// UpdateProgress records progress while PROCESSING under owner.
	// ErrConflict otherwise: this is how a running handler learns that its
	// request was cancelled.
	UpdateProgress(ctx context.Context, requestID, owner string, percent float64, message string) error
	// Complete stores the result and moves the request to COMPLETED.
	Complete(ctx context.Context, requestID, owner string, result json.RawMessage) (*AsyncRequest, error)
	// Fail stores the error and moves the request to FAILED.
	Fail(ctx context.Context, requestID, owner string, reqErr RequestError) (*AsyncRequest, error)
	// Requeue records a retryable failure: Attempts+1, and back to PENDING
	// (with Progress 0 and no ProgressMessage: the next attempt starts
	// from nothing) if Attempts is still below maxAttempts, else FAILED
	// with reqErr.
	Requeue(ctx context.Context, requestID, owner string, reqErr RequestError, maxAttempts int) (*AsyncRequest, error)
	// Rebind makes connectionID the request's connection, where its
	// messages go first: a client that resumes a request from a new
	// connection gets its outcome there. Any status; it changes nothing
	// else (UpdatedAt included). ErrNotFound if absent or expired.
	Rebind(ctx context.Context, requestID, connectionID string) error
	// Cancel moves a PENDING or PROCESSING request to CANCELLED. A request
	// already terminal is ErrConflict.
	Cancel(ctx context.Context, requestID string) (*AsyncRequest, error)
	// ListRequestsByConnection returns one page of the connection's requests,
	// oldest first. An empty cursor starts at the beginning; an empty next
	// cursor means there are no more pages (a non-empty one may still lead
	// to an empty last page). limit <= 0 means the store's default page
	// size. A cursor that is malformed or from another list is
	// ErrInvalidInput.
	ListRequestsByConnection(ctx context.Context, connectionID string, limit int, cursor string) (page []*AsyncRequest, next string, err error)
	// ListRequestsByUser is ListRequestsByConnection for a user.
	ListRequestsByUser(ctx context.Context, userID string, limit int, cursor string) (page []*AsyncRequest, next string, err error)
	// ListStalled returns one page of the requests that are Stalled by the
	// store's clock: PENDING since before pendingBefore, or PROCESSING
	// under an expired lease. A sweeper claims them so that no request
	// stays stuck when its dispatch was lost or its worker died. Paging is
	// as in ListRequestsByConnection; a request that changes between pages
	// may be missed by this pass or listed again, which a sweeper's Claim
	// settles. Order is oldest first where the backend makes that cheap.
	ListStalled(ctx context.Context, pendingBefore time.Time, limit int, cursor string) (page []*AsyncRequest, next string, err error)
}
