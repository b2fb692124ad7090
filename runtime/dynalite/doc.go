// Package dynalite runs dynalite, a DynamoDB-API server on Node.js that
// keeps its tables in memory, for a local runtime that was given no
// DynamoDB endpoint.
//
// [Start] finds dynalite in the folders of [Options.Dirs] (each holding
// node_modules/dynalite, as `npm ci` in the repository's .tools leaves
// it) or, with [Options.Install], installs the pinned [Version] once into
// [Options.InstallDir] with npm, announcing it on [Options.Progress]; it
// then starts it on a free loopback port and waits until it answers. The
// [Server] it returns names its Endpoint; Close stops it, and it dies with
// the process that started it (Linux).
//
// dynalite speaks the DynamoDB HTTP API (tables, GSIs, items, queries,
// conditional writes) but not transactions, UpdateTimeToLive or Streams
// (the local runtime records writes for Streams itself).
//
// See https://github.com/architect/dynalite
package dynalite
