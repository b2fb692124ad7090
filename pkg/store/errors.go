package store

import "errors"

// Sentinel errors returned by every store implementation. Implementations
// wrap them (and the backend's own error) so callers branch with errors.Is.
var (
	// ErrNotFound means the record does not exist or has expired.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists means a record with the same key exists; Enqueue
	// returns it so that a resubmitted request is not run twice.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrConflict means the record is not in a state that allows the
	// transition: a claim lost to another worker, progress on a cancelled
	// request, a write by a worker whose lease was taken over.
	ErrConflict = errors.New("store: conflict")
	// ErrTooLarge means the record would exceed the backend's item limit
	// (DynamoDB: 400 KB). Both stores enforce the same limit.
	ErrTooLarge = errors.New("store: item too large")
	// ErrInvalidInput means a required field is empty or a value is out of
	// range; nothing was written.
	ErrInvalidInput = errors.New("store: invalid input")
)
