// Package connectiontest helps test code that sends to WebSocket clients
// through package connection, without AWS.
//
// Start with [NewServer]: like httptest.NewServer, it runs a real
// API Gateway Management API (`@connections`) endpoint on loopback that
// speaks the AWS wire format (status codes, the X-Amzn-Errortype header, a
// JSON error body, the GET connection body), checks that requests are
// SigV4-signed, records what each connection received and lets a test
// script faults: per-connection status sequences, 429 bursts, an account
// rate limit (a token bucket answering 429 LimitExceededException, see
// [Server.SetRateLimit]), random server errors, latency, gone
// connections, dropped connections. Point a real client at it with
// [Server.FastClient] (the lean client) or [Server.Client] (the SDK's)
// and hand that to connection.NewManager.
//
// [Recorder] is a recording fake of the Send/Broadcast surface, for tests
// that do not need the wire at all; its SendFunc hook injects failures.
//
// The wire format is that of
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html
package connectiontest
