// Package store defines what Streamer persists: WebSocket connections and
// asynchronous requests, the interfaces that hold them, and the errors every
// implementation returns.
//
// Start with [ConnectionStore] and [RequestStore]. Two implementations ship
// with Streamer: package memory (the embedded default, for one process) and
// package dynamo (Amazon DynamoDB, for Lambda). Both pass the same contract
// suite, package storetest, so code written against these interfaces behaves
// the same on either. Both are also a [RouteGetter], the narrower lookup a
// connection Manager makes on every Send.
//
// API Gateway's $disconnect event is best effort and may never arrive, so
// every record carries a TTL: an expired record is invisible to reads even
// before the backend deletes it.
// See https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-keys-connect-disconnect.html
package store
