// A CommonJS handler that ships no SDK and requires the one Lambda's
// nodejs18.x and later runtimes bundle.
const { ApiGatewayManagementApiClient } = require("@aws-sdk/client-apigatewaymanagementapi");

exports.handler = async () => ({ sdk: typeof ApiGatewayManagementApiClient });
