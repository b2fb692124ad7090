// Package invokeapi serves the Lambda Invoke API for local functions, so
// code that calls lambda.invoke on a sibling function runs unchanged.
//
// A [Server] answers POST /2015-03-31/functions/{FunctionName}/invocations
// for the functions it is given ([Config.Functions]), as Lambda does:
//
//   - X-Amz-Invocation-Type RequestResponse (the default) runs the function
//     and answers 200 with its response, or with its error document and
//     X-Amz-Function-Error: Unhandled;
//   - Event queues the invocation and answers 202 at once; a failed run is
//     retried twice, after [DefaultRetryDelays] (Lambda's one and two
//     minutes), then dropped with a log line;
//   - DryRun checks the function exists and answers 204.
//
// FunctionName is a function's name, its ARN
// (arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]) or a
// partial ARN ({account}:function:{name}); the Qualifier is $LATEST or
// none. An unknown function gets 404 ResourceNotFoundException in
// Lambda's error shape. Other Lambda API operations answer 501 with error
// code NotEmulated.
//
// Not emulated: X-Amz-Log-Type Tail (no X-Amz-Log-Result is returned),
// versions and aliases, resource policies and reserved concurrency.
//
// See https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html and
// https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
package invokeapi
