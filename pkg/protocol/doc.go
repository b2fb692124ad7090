// Package protocol defines Streamer's wire messages: what clients send
// (Inbound, validated by ParseInbound) and what servers answer (Ack,
// Response, Progress, Complete, Error, Pong and the channel messages
// Subscribed, Publication, Presence, ...). Each message has one definition
// here; the router (package streamer), the channel service (package
// channel) and the tests all import it. docs/PROTOCOL.md describes the
// same messages for client authors.
//
// The messages travel over an API Gateway WebSocket API:
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api.html
package protocol
