// Package connection sends messages to WebSocket clients of an API Gateway
// WebSocket API through the API Gateway Management API
// (POST/GET/DELETE /@connections/{id}), with retries, a circuit breaker
// per connection, metrics and a graceful Shutdown.
//
// Start with [NewManager], given a store.ConnectionStore, a client from
// [NewAPIGatewayClient] and the API's management endpoint; then
// [Manager.Send], [Manager.Broadcast], [Manager.IsActive] and, when the
// process stops, [Manager.Shutdown]. Lambda handlers call [Manager.Flush]
// before they return, because Lambda freezes the process between
// invocations and would freeze the manager's background LastPing writes.
//
// # Delivery semantics
//
// A message is never re-sent after API Gateway accepted it (answered 200).
// An attempt the gateway rejected (5xx, or 429 "too many requests / the
// client's buffer is full") was not delivered and is retried, with
// exponential backoff and full jitter, up to the RetryPolicy's limit. Other
// 4xx answers are final: 410 Gone removes the connection from the store
// (ErrConnectionStale), 403 and 413 are returned as they are. A network
// failure or timeout is also retried, but an attempt that timed out may
// have reached the gateway and been delivered, so for timeouts delivery is
// at-least-once: the client can see the message twice. Within one
// Broadcast each distinct ID is otherwise delivered at most once.
//
// The manager owns retries: it turns the SDK's own retries off on every
// call, whatever client it is given, so attempts do not multiply.
//
// # Errors and metrics
//
// Errors wrap the sentinels ([ErrConnectionNotFound], [ErrConnectionStale],
// [ErrCircuitOpen], ...) and the SDK's typed error (such as
// *types.GoneException); match them with errors.Is and errors.As.
// Broadcast reports per-ID failures in a [*BroadcastError]. [Manager.Stats]
// is a typed snapshot of the metrics, [Manager.GetMetrics] the same as a
// map and [Manager.Collector] a Prometheus collector.
//
// Log lines go to the injected *slog.Logger (none by default) and carry
// the correlation ID set with [WithCorrelationID]. Message bodies are never
// logged.
//
// Package connectiontest has a real @connections server for tests and a
// recording fake.
//
// See https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html
// and https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename-connections-connectionid.html
package connection
