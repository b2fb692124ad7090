// Package deploy holds Streamer's AWS deployment: template.json, an AWS
// SAM template (JSON, so Go's encoding/json reads it) for the WebSocket
// API, the five Lambda functions built from examples/lambda and the two
// DynamoDB tables; README.md says how to build and deploy it.
//
// The package has no Go API. Its tests are the point: they read the
// template and check it against the code, so the template cannot name a
// table, index, attribute, environment variable, route or selector the
// code does not use:
//
//   - each table equals pkg/store/dynamo's Tables definition, field by
//     field, with TTL on dynamo.AttrTTL;
//   - the functions' environment, read through awslambda.ConfigFromEnv,
//     gives back the tables the template creates and the parameters it
//     was given, and every variable set is one the code reads;
//   - the stream filter selects exactly the records
//     awslambda.PendingRequest says need work;
//   - the binary the template deploys, started with each function's
//     environment against a local Lambda Runtime API, serves its event;
//   - each check catches its own kind of mistake made in a broken copy of
//     the template (TestChecksCatchBrokenTemplates), so none passes idly.
//
// See https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
// and https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api.html.
package deploy
