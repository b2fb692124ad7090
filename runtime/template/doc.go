// Package template reads the AWS SAM and CloudFormation templates that
// deploy a WebSocket API, so the local runtime can run what they declare.
//
// [Load] parses a template (JSON, or YAML with CloudFormation's short tags
// !Ref, !Sub, !GetAtt, !Join, !If and the others), resolves its parameters
// (defaults, AllowedValues, AllowedPattern, overrides as `sam deploy
// --parameter-overrides` takes them), conditions and intrinsic functions,
// and returns an [App]: the ProtocolType WEBSOCKET [API] with its routes,
// integrations, REQUEST authorizers and stage, declared as
// AWS::ApiGatewayV2 resources or as SAM's AWS::Serverless::WebSocketApi,
// which is expanded into the resources SAM generates for it (same logical
// IDs, `${Api.Stage}` included) and read as those; the [Function]s with their
// runtime, handler, code, timeout and environment (SAM Globals merged) and
// the [Build] their Metadata gives `sam build` (BuildMethod, ContextPath,
// ProjectRootDirectory, WorkingDirectory); the
// [Table]s (AWS::DynamoDB::Table, and AWS::Serverless::SimpleTable as SAM
// expands it); the DynamoDB Streams event sources ([StreamSource]) and
// schedule rules ([Schedule]); the [Output]s, which [App.LocalOutputs]
// gives with the local endpoint in place of the API's AWS one. Parameters
// of type Number, List<Number> and CommaDelimitedList take typed defaults
// and are checked element by element; the pseudo parameters (AWS::Region,
// AccountId, StackName, StackId, Partition, URLSuffix, NoValue,
// NotificationARNs) resolve from [Options]. What it reads but cannot run
// locally is listed in [App.Unsupported], one line each, rather than
// dropped.
//
// A template it cannot run is an [*Error] naming the resource and the
// field; every error matches [ErrInvalid].
//
// Physical names follow CloudFormation where the template sets them
// (TableName, FunctionName) and are "{StackName}-{LogicalID}" otherwise,
// so a Ref to a table resolves to the table name the functions use
// locally.
//
// See https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
// and https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-specification.html
package template
