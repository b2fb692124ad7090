package connection

import "context"

type correlationKey struct{}

// WithCorrelationID returns a context carrying id. Every log line the
// Manager writes for a call made with that context carries it as
// "correlation_id", so one request can be followed from the router through
// the manager. Adapters set it from the API Gateway request ID.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the ID set by WithCorrelationID, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}
