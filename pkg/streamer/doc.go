// Package streamer is the request/response system over WebSockets: the wire
// protocol, the router that answers requests synchronously or queues them,
// and the processor that runs queued requests and streams their progress.
//
// The protocol is documented in docs/PROTOCOL.md; each message has one Go
// definition here ([Inbound], [Ack], [Response], [Progress], [Complete],
// [Error], [Pong]).
package streamer
