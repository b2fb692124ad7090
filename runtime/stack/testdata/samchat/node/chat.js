// A chat whose people are named by the authorizer: the name comes from the
// query string on $connect and reaches every later event in
// requestContext.authorizer.
const { DynamoDBClient, PutItemCommand, DeleteItemCommand, ScanCommand } = require('@aws-sdk/client-dynamodb');
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require('@aws-sdk/client-apigatewaymanagementapi');

const ddb = new DynamoDBClient({});
const table = process.env.TABLE;

exports.authorize = async (event) => {
  const name = event.queryStringParameters.name;
  return {
    principalId: name,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: name === 'mallory' ? 'Deny' : 'Allow', Resource: event.methodArn }],
    },
    context: { name },
  };
};

exports.connect = async (event) => {
  const { connectionId, authorizer } = event.requestContext;
  await ddb.send(new PutItemCommand({ TableName: table, Item: { connectionId: { S: connectionId }, name: { S: authorizer.name } } }));
  return { statusCode: 200 };
};

// broadcast posts text to every stored connection through endpoint.
async function broadcast(endpoint, text) {
  const api = new ApiGatewayManagementApiClient({ endpoint });
  const rows = await ddb.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
  await Promise.all(rows.Items.map((it) => api.send(new PostToConnectionCommand({ ConnectionId: it.connectionId.S, Data: text }))));
}

exports.disconnect = async (event) => {
  const { connectionId, authorizer } = event.requestContext;
  await ddb.send(new DeleteItemCommand({ TableName: table, Key: { connectionId: { S: connectionId } } }));
  await broadcast(process.env.ENDPOINT, `${authorizer.name} left`);
  return { statusCode: 200 };
};

exports.sendMessage = async (event) => {
  const { domainName, stage, authorizer } = event.requestContext;
  const { text } = JSON.parse(event.body);
  await broadcast(`https://${domainName}/${stage}`, `${authorizer.name}: ${text}`);
  return { statusCode: 200 };
};

exports.fallback = async (event) => {
  const api = new ApiGatewayManagementApiClient({ endpoint: process.env.ENDPOINT });
  await api.send(new PostToConnectionCommand({ ConnectionId: event.requestContext.connectionId, Data: `unknown action: ${event.body}` }));
  return { statusCode: 200 };
};
