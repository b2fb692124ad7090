// Package connection sends messages to WebSocket clients of an API Gateway
// WebSocket API through the API Gateway Management API
// (POST/GET/DELETE /@connections/{id}), with retries, a circuit breaker
// per connection, metrics and a graceful Shutdown.
//
// Start with [NewManager], given a store.ConnectionStore, a client from
// [NewFastClient] (or [NewAPIGatewayClient]) and the API's management
// endpoint; then
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
// exponential backoff and full jitter, up to the RetryPolicy's limit; a
// throttled attempt is retried as soon as the adaptive pacing (below) has
// lowered its rate, the backoff bounding the wait. Other
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
// # Two clients
//
// [NewFastClient] is the default: a lean client that signs each request
// with the SDK's own SigV4 signer and the aws.Config's (cached)
// credentials and writes it with net/http's own Request.Write over a
// keep-alive pool of its own (reading the answer with http.ReadResponse on
// the same goroutine, instead of handing each request to an
// http.Transport's connection goroutines), skipping the SDK's middleware
// stack. On Lambda, CPU time is both the bill
// and the latency of a large Broadcast, and the SDK spends several times
// the CPU and allocations of the HTTP call itself on each
// PostToConnection (docs/PERFORMANCE.md has the numbers). A Broadcast
// through it hashes the message once, not once per ID.
//
// [NewAPIGatewayClient] builds the SDK's own client and stays supported:
// choose it when you need what only the SDK stack gives (its middleware
// and logging hooks, a custom endpoint resolver, FIPS or dual-stack
// endpoint options, SDK-level instrumentation). Both return the same
// typed errors, so everything below holds for either; the package's
// tests run against both.
//
// # Pacing
//
// AWS allows 10,000 requests per second per account and region (burst
// 5,000), shared by every API and every @connections call, and answers
// 429 LimitExceededException beyond it. Every attempt a Manager makes
// first takes a token from its [Limiter]: a token bucket (by default
// [DefaultRate] per second with a burst of [DefaultBurst], below AWS's
// quota) that is also adaptive. When the gateway answers 429 for several
// connections at once (the account is throttled) the rate is cut to just
// under the rate the gateway admits, measured from the Manager's answers
// (so a sender far above its quota comes down to it in one or two round
// trips, whatever its configured rate), and then grows back additively,
// probing (AIMD); when one connection alone keeps answering 429 (its
// outbound buffer is full) the rate is left alone and that connection's
// circuit breaker acts. Give one
// Limiter to every Manager of a process with [WithLimiter]; a Limiter
// with no Rate is unlimited until the gateway throttles it.
//
// # Errors and metrics
//
// Errors wrap the sentinels ([ErrConnectionNotFound], [ErrConnectionStale],
// [ErrCircuitOpen], ...) and the SDK's typed error (such as
// *types.GoneException); match them with errors.Is and errors.As.
// Broadcast reports per-ID failures in a [*BroadcastError]. [Manager.Stats]
// is a typed snapshot of the metrics (pacing rate and throttle events
// included), [Manager.GetMetrics] the same as a map and
// [Manager.Collector] a Prometheus collector.
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
