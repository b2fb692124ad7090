// sendmessage, as AWS's sample writes it (here an ES module): read every
// connection, post to each through the management API at
// https://{domainName}/{stage}, delete the ones that answer 410.
import { DynamoDBClient, ScanCommand, DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";

const ddb = new DynamoDBClient({});
const TableName = process.env.TABLE_NAME;

export const handler = async (event) => {
  const { Items } = await ddb.send(new ScanCommand({ TableName, ProjectionExpression: "connectionId" }));
  const api = new ApiGatewayManagementApiClient({
    endpoint: "https://" + event.requestContext.domainName + "/" + event.requestContext.stage,
  });
  const postData = JSON.parse(event.body).data;
  await Promise.all(Items.map(async ({ connectionId }) => {
    try {
      await api.send(new PostToConnectionCommand({ ConnectionId: connectionId.S, Data: postData }));
    } catch (e) {
      if (e.$metadata && e.$metadata.httpStatusCode === 410) {
        console.log(`Found stale connection, deleting ${connectionId.S}`);
        await ddb.send(new DeleteItemCommand({ TableName, Key: { connectionId } }));
      } else {
        throw e;
      }
    }
  }));
  return { statusCode: 200, body: "Data sent." };
};
