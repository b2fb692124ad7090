// Package devui is what `streamer dev` shows a person in a browser: the
// demo page at / (the TypeScript client of clients/js, embedded, driving
// the demo actions) and the dev console at /_console (the gateway's live
// connections, recent route invocations and @connections calls, each
// with a detail view of its event, response or body (truncated, with
// credentials redacted), a filter by connection, and buttons that post to
// or disconnect a connection through the real management API).
//
// Start with New, mount UI.Handler in front of the gateway, and give the
// UI to the gateway as its local.Observer. Everything works offline: the
// page, its script and the client are compiled into the binary with
// go:embed (assets/client is the build of clients/js, kept in step with
// its sources by TestEmbeddedClientIsFresh).
package devui
