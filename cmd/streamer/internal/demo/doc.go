// Package demo is the application `streamer dev` runs: a handful of actions
// registered on a streamer.Router, so that `streamer dev` exercises the whole
// stack a deployed app runs on Lambda ($connect verification and identity,
// the router, the async processor with progress, replies through
// @connections). It owns nothing wire-level.
//
// The actions (echo, whoami, broadcast, report) are examples/demoapp's,
// the same code examples/lambda deploys to Lambda; this package adds what
// is `streamer dev`'s own: the anonymous identity and the demo channels.
//
// With auth off, [AnonymousIdentity] makes every connection user
// "anonymous" in tenant "default".
//
// Start with [Register].
package demo
