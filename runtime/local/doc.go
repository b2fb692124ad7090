// Package local is an Amazon API Gateway WebSocket API that runs on one
// machine: the same WebSocket endpoint, the same @connections management
// API and the same Lambda events, so an application's handlers and the real
// AWS SDK client work against it unchanged.
//
// Start with [New] and [Config]: give the gateway one [Handler] per route key
// ($connect, $disconnect, $default or a custom key chosen by the route
// selection expression), then [Gateway.Start] it (or [Gateway.Serve] a
// listener of your own). Clients connect to [Gateway.URL]
// (ws://ADDR/{stage}); the backend answers through [Gateway.ManagementEndpoint]
// (http://ADDR/{stage}/@connections/{connectionId}) with
// *apigatewaymanagementapi.Client. [Gateway.Shutdown] closes every socket
// with 1001 and runs $disconnect for each, like a deployment going away.
//
// What it reproduces, each covered by a test against the real SDK client and
// real WebSocket clients:
//
//   - $connect runs before the upgrade completes; a non-2xx answer refuses
//     the upgrade with that status, a handler error with 500. $disconnect
//     runs exactly once per connection, whoever closed it, with
//     disconnectStatusCode and disconnectReason.
//   - Route selection ($request.body.<path>, nested paths, values
//     stringified); non-JSON and unmatched messages go to $default; with no
//     $default the client gets API Gateway's {"message": "Forbidden", ...}
//     frame and stays connected.
//   - POST (raw bytes, text stays text, binary stays binary), GET and DELETE
//     @connections with API Gateway's status codes and X-Amzn-Errortype
//     errors: 410 GoneException, 413 PayloadTooLargeException over 131072
//     bytes, 429 LimitExceededException when a slow client's bounded
//     outbound queue is full. SigV4-signed requests are accepted; checking
//     the signature as API Gateway does is optional
//     ([Config.VerifySignatures]: any access key, the local secret).
//   - Inbound messages over 128 KiB close the socket with 1009; outbound
//     messages over 32 KiB are split into frames of at most 32 KiB of one
//     WebSocket message.
//   - Each message is its own invocation: a connection's messages are
//     handled concurrently, so a slow handler does not hold back the next
//     message and responses come back in the order handlers finish, not
//     the order messages were sent. At most [Config.MaxMessagesInFlight]
//     (32) run at once per connection; beyond that the gateway stops
//     reading the connection until one finishes (backpressure; nothing is
//     dropped). A client that needs one message handled before the next
//     must wait for its answer, as on AWS.
//   - $disconnect does not wait for the connection's messages still
//     being handled, as in API Gateway; their handlers keep a valid
//     context and run to the end, their route responses are dropped, and
//     Shutdown waits for them.
//   - Idle timeout and maximum connection lifetime, 16-character
//     base64-style connection IDs.
//
// Differences that remain: $connect cannot attach a Lambda authorizer context for later events; the
// account-level rate limits (500 new connections/s, 10,000 requests/s with
// a 5,000 burst) apply only when asked for ([Config.Quotas]), and API
// Gateway's bad days (5xx, 410 for live connections, latency, lost
// $disconnect, dropped sockets) only when injected ([Config.Faults]); API
// Gateway does not document its close reasons, so the
// gateway closes idle, expired and shut-down connections with 1001 "Going
// away" and deleted ones with 1000 "Connection deleted". A posted body that
// is valid UTF-8 goes out as a text frame, anything else as binary.
//
// A server on loopback is reachable from every web page its user opens,
// so every request must name the gateway in its Host (the bound address,
// localhost, 127.0.0.1, [::1], DomainName or [Config.AllowedHosts]: this
// stops DNS rebinding), and the management API refuses a browser Origin
// that is not allowed. [Gateway.Guard] applies the same rules to pages,
// consoles and metrics that share the port, and [Config.AccessToken]
// protects a gateway exposed beyond loopback on purpose.
//
// A dev console or a metrics endpoint watches the gateway through
// [Config.Observer]: it is told of each connection opening and closing,
// each route invocation (status, latency, size) and each @connections call
// (status, error type); [Gateway.Connections] lists the open connections.
//
// Routes are one-way, as in API Gateway unless a route response is set up:
// a handler's response body is dropped unless its route key is listed in
// [Config.TwoWayRoutes], in which case a non-empty body is sent back to the
// client as one message.
//
// See https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api.html
// and https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html
package local
