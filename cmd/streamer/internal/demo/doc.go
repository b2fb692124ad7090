// Package demo is the application `streamer dev` runs: a handful of actions
// registered on a streamer.Router, so that `streamer dev` exercises the whole
// stack a deployed app runs on Lambda ($connect verification and identity,
// the router, the async processor with progress, replies through
// @connections). It owns nothing wire-level.
//
// Actions:
//   - echo (sync): data is the payload.
//   - whoami (sync): data is the connection ID and the identity the router
//     read from the connection record ([Identity]); never the payload's.
//   - broadcast (sync): the payload, as sent, goes to every connection of
//     the caller's tenant (the caller's included); data counts them
//     ([BroadcastResult]).
//   - report (async): runs for 5 s (or {"seconds": n}, up to 60), reports
//     progress every 100 ms, then completes with a [ReportResult]; a cancel
//     stops it.
//
// With auth off, [AnonymousIdentity] makes every connection user
// "anonymous" in tenant "default".
//
// Start with [Register].
package demo
