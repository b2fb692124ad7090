// Package progress reports how far a long-running (async) request has come,
// without letting the reporting slow the work down or flood the client.
//
// A handler receives a [Reporter] and calls Report as often as it likes.
// The processor creates one [Publisher] per request, which implements
// Reporter: it keeps only the newest update (coalescing), delivers it to the
// client at most [WithRate] times per second and persists it to the request
// store at most once per [WithPersistInterval], from a single goroutine so a
// request's updates are delivered in order. Report never waits for the
// network. [Publisher.Close] delivers the newest pending update (so a final
// 100 % is never lost) and waits for the goroutine to end, which matters on
// Lambda: the process is frozen as soon as the handler returns.
//
// Types to start with: [Reporter], [Publisher], [Update], [Func].
//
// Progress messages travel over API Gateway's @connections API; see
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html
package progress
