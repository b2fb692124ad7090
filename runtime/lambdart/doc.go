// Package lambdart runs Lambda functions on this machine as Lambda does:
// each function is a pool of its own processes, and each process polls
// a Lambda Runtime API (the HTTP API every Lambda runtime speaks:
// /2018-06-01/runtime/invocation/next, .../response, .../error and
// /runtime/init/error) served on loopback for it alone.
//
// Start with [New] and a [Config] naming the command to run (a
// provided.al2023 bootstrap, or one of this package's language shims
// through [Runtimes.Launch] or [Command]), then [Function.Invoke] it.
// Like Lambda, a process gets one invocation at a time and the pool grows
// with demand up to Config.Concurrency processes (by default what the
// machine's memory holds); a process idle for Config.IdleTimeout is
// stopped, as Lambda reclaims idle environments. Where Lambda would start
// an environment per concurrent request, the pool adds a process only
// when the backlog would take the running ones longer than a cold start,
// since here cold starts share the machine's CPU. An invocation that runs past
// Config.Timeout fails with [ErrTimeout] and its process is stopped; a
// process that exits or breaks the protocol fails its invocation
// ([ErrExited], [ErrProtocol]) and the next invocation starts a fresh one.
// A function's answer with errorType/errorMessage is a [*FunctionError].
// When Config.Watch is set, a change to the code stops the function's
// processes (after their current invocation) so the next one runs the new
// code, rebuilt first by Config.Build when given.
//
// [Runtimes] runs each function on the interpreter of the runtime it names
// (nodejs22.x on a Node.js 22, python3.12 on a Python 3.12) when the
// machine has one, and says what it substitutes otherwise; [NodeSDK] fills
// a cache with the AWS SDK for JavaScript v3 that Lambda's Node.js
// runtimes bundle. The Node.js shim refuses callback handlers on
// nodejs24.x as Lambda does.
//
// Processes' stdout and stderr go to Config.Output, each line prefixed
// with the function's name.
//
// See https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
package lambdart
