// Package streamer is the request/response system over WebSockets: the
// router that answers requests synchronously or queues them,
// the processor that runs queued requests and streams their progress, and
// the $connect/$disconnect handlers that establish who is on each socket.
//
// Start with these types:
//
//   - [Router], mounted on API Gateway's $default route, which answers a
//     message through the endpoint its event names, so a reply never needs
//     the connection's record: [Router.Handle]
//     registers a sync action, [Router.HandleAsync] an async one whose
//     handler receives a progress.Reporter; [Router.Use] adds middleware
//     that wraps both alike; [HandlerOf] and [AsyncHandlerOf] decode the
//     payload into the handler's own type. Every reply goes through a
//     [Sender] (the connection Manager, i.e. @connections), as in production.
//   - [Processor], which claims a queued request under a lease, runs its
//     handler, persists the outcome and sends complete or error to the
//     user's live connections. [Processor.Process] runs one request (the
//     Lambda stream adapter calls it); [Processor.Start] adds an in-process
//     worker pool, for one process such as `streamer dev`. A worker that
//     dies is replaced through its lease: another takes the request over
//     with the next attempt number (the ack's and progress' Attempt); a
//     request whose record vanishes ends with REQUEST_LOST. [NewProcessor]
//     builds one from its own dependencies and the [Actions] it shares with
//     the router (Router.Actions).
//   - [Queue], the one thing a Router and a Processor in the same process
//     share besides their registry: the router ([WithQueue]) hands each
//     request it stores to the processor's pool ([WithProcessorQueue]).
//     Neither holds the other. On Lambda there is no Queue: the table's
//     stream and a scheduled sweep bring the stored requests.
//   - [ConnectHandler], which verifies the token on $connect ([TokenVerifier],
//     satisfied by *auth.Verifier) and stores the connection's identity.
//     The router reads identity only from that record, never from a message.
//
// The adapters in package awslambda and the local runtime convert API
// Gateway's events into [Message], [ConnectRequest] and [DisconnectRequest].
//
// The protocol is documented in docs/PROTOCOL.md; each message has one Go
// definition, in package protocol.
//
// See https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api.html
package streamer
