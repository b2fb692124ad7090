// Package demoapp is Streamer's demo application: the actions `streamer
// dev` runs in process and examples/lambda deploys to Lambda, one code for
// both, so that what a developer tries locally is what the deployment
// answers (cmd/streamer's TestTemplateParityWithTheDemo runs both and
// compares every message).
//
// Actions:
//   - echo (sync): data is the payload.
//   - whoami (sync): data is the connection ID and the identity the router
//     read from the connection record ([Identity]); never the payload's.
//   - broadcast (sync): the payload, as sent, goes to every connection of
//     the caller's tenant (the caller's included; only the caller when it
//     has no tenant); data counts them ([BroadcastResult]).
//   - report (async): runs for 5 s (or {"seconds": n}, up to 60), reports
//     progress every 100 ms, then completes with a [ReportResult]; a cancel
//     stops it.
//
// Start with [Register]; replace it with your own actions in an app of
// your own.
package demoapp
