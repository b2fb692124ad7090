// Package awslambda runs Streamer on AWS Lambda. It converts the events
// aws-lambda-go delivers into Streamer's own types and back, and nothing
// else: the logic lives in package streamer.
//
// Five handlers make a deployment, one per Lambda function (or one function
// switching on the route key or event):
//
//   - [ConnectHandler] for the $connect route: verifies the token and
//     stores the connection; 401 refuses it.
//   - [DisconnectHandler] for $disconnect.
//   - [RouterHandler] for $default: every message goes to a
//     [streamer.Router], which replies through @connections.
//   - [StreamHandler] for the requests table's DynamoDB stream: runs queued
//     async requests with a [streamer.Processor], reporting partial batch
//     failures.
//   - [SweepHandler] for a schedule (EventBridge, every minute): runs the
//     requests no stream record will bring, those whose record was lost
//     and those whose worker died holding the lease.
//
// Lambda freezes the process as soon as a handler returns, so each handler
// waits for the connection manager's background work ([Flusher]) first.
// [ConfigFromEnv] reads the deployment's settings; this package and cmd/
// are the only places that read the environment.
//
// [EMF] wraps the handlers to write one CloudWatch Embedded Metric Format
// line per invocation (sends, 410s, 429s, broadcasts, async outcomes), and
// [TraceID] makes the X-Ray trace the correlation ID of every log line of
// the invocation; docs/OPERATING.md lists the metrics and the alarms.
//
// See https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-integrations.html
// and https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html.
package awslambda
