package progress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Update is one progress report of a request.
type Update struct {
	// Percentage is between 0 and 100 inclusive.
	Percentage float64
	// Message is a short human-readable status line; it may be empty.
	Message string
	// Details is optional structured data for the client, already
	// marshalled (so a caller mutating its value later cannot race with
	// delivery). Nil when the report carried none.
	Details json.RawMessage
	// Sequence numbers the reports of one Publisher from 1 in call order.
	// Delivered updates have strictly increasing sequences; gaps are
	// updates that were coalesced away.
	Sequence uint64
}

// Reporter is what an async handler receives to report its progress.
// Implementations never block on the network, so a handler may call them in a
// tight loop.
type Reporter interface {
	// Report records percentage (0–100) and a status message.
	Report(percentage float64, message string) error
	// ReportDetails is Report with structured details, which must be
	// JSON-marshalable.
	ReportDetails(percentage float64, message string, details any) error
}

// Func delivers one update: the processor's send-to-client step or its
// persist-to-store step. It must return when ctx is done.
type Func func(ctx context.Context, u Update) error

var (
	// ErrClosed is returned by Report after Close, or after the context
	// given to NewPublisher has ended.
	ErrClosed = errors.New("progress: reporter closed")
	// ErrInvalidPercentage is returned for a percentage outside 0..100 or NaN.
	ErrInvalidPercentage = errors.New("progress: percentage must be between 0 and 100")
	// ErrInvalidDetails is returned when details cannot be marshalled to JSON;
	// the marshalling error is wrapped too.
	ErrInvalidDetails = errors.New("progress: details are not JSON-marshalable")
)

// Step names the delivery step that failed in a [DeliveryError].
type Step string

// The two delivery steps of a Publisher.
const (
	StepSend    Step = "send"
	StepPersist Step = "persist"
)

// DeliveryError is what the error handler (see [WithErrorHandler]) receives
// when the send or persist Func fails. It unwraps to the Func's error, so the
// processor can test errors.Is(err, store.ErrConflict).
type DeliveryError struct {
	Step   Step
	Update Update
	Err    error
}

// Error names the failed step and update, and the Func's error.
func (e *DeliveryError) Error() string {
	return fmt.Sprintf("progress: %s of update %d failed: %v", e.Step, e.Update.Sequence, e.Err)
}

// Unwrap returns the error of the failed Func.
func (e *DeliveryError) Unwrap() error { return e.Err }

// newUpdate validates a report and builds its Update (without Sequence).
func newUpdate(percentage float64, message string, details any) (Update, error) {
	if math.IsNaN(percentage) || percentage < 0 || percentage > 100 {
		return Update{}, fmt.Errorf("%w: got %v", ErrInvalidPercentage, percentage)
	}
	u := Update{Percentage: percentage, Message: message}
	if details != nil {
		raw, err := json.Marshal(details)
		if err != nil {
			return Update{}, fmt.Errorf("%w: %w", ErrInvalidDetails, err)
		}
		if string(raw) != "null" {
			u.Details = raw
		}
	}
	return u, nil
}
