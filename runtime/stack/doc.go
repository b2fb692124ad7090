// Package stack runs a SAM/CloudFormation template's WebSocket API on this
// machine: the local API Gateway (runtime/local) in front of the
// template's real Lambda functions (runtime/lambdart), its DynamoDB tables,
// DynamoDB Streams and schedule event sources, and the authorizer of
// $connect, as one unit behind [Start] and [Stack.Shutdown].
//
// [Config] names the template and the deployment choices (parameter
// overrides, stack name, Region) and the local ones (listen address,
// DynamoDB endpoint, processes per function). [Start] loads the template,
// creates its tables, starts its functions (building those `sam build`
// builds, with their Makefile, go build or esbuild, before their first
// process: see [BuildError]) and serves the API; the [Stack] it returns
// tells the WebSocket URL and the endpoints, and
// [Stack.Shutdown] stops everything, $disconnect included, within its
// context.
//
// Start writes one line per thing the template declares that does not run
// locally as it would on AWS ("not emulated: ..."), and one per function,
// to [Config.Notices].
//
// See https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api.html
// and https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
package stack
