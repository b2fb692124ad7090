package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/streamer-go/streamer/pkg/store"
)

// opError prefixes err with the package, operation and record ID.
func opError(op, id string, err error) error {
	if id == "" {
		return fmt.Errorf("dynamo: %s: %w", op, err)
	}
	return fmt.Errorf("dynamo: %s %q: %w", op, id, err)
}

func invalid(op, id, what string) error {
	return opError(op, id, fmt.Errorf("%s: %w", what, store.ErrInvalidInput))
}

func tooLarge(op, id string, n int, cause error) error {
	err := fmt.Errorf("item of %d bytes exceeds the %d-byte limit: %w", n, store.MaxItemBytes, store.ErrTooLarge)
	if cause != nil {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return opError(op, id, err)
}

// sentinel wraps both a store sentinel and the SDK error that caused it.
func sentinel(op, id, why string, s, cause error) error {
	if why != "" {
		s = fmt.Errorf("%s: %w", why, s)
	}
	if cause == nil {
		return opError(op, id, s)
	}
	return opError(op, id, fmt.Errorf("%w: %w", s, cause))
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// validationFailed reports a ValidationException, which DynamoDB returns
// among other things for an update that would exceed the item size limit.
func validationFailed(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationException"
}

// unknownOperation reports that the server does not implement the call,
// as dynalite answers UpdateTimeToLive.
func unknownOperation(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "UnknownOperationException"
}

func checkCtx(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return opError(op, "", err)
	}
	return nil
}
