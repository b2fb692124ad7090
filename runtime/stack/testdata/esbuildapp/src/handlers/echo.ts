import { basename } from "node:path";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { reply } from "../lib/reply";

interface WebSocketEvent {
  body?: string;
  requestContext: { connectionId: string; domainName: string; stage: string };
}

// handler answers the sender through the management API, at the endpoint
// API Gateway's documentation builds from the event.
export const handler = async (event: WebSocketEvent): Promise<{ statusCode: number }> => {
  const { connectionId, domainName, stage } = event.requestContext;
  const client = new ApiGatewayManagementApiClient({ endpoint: `https://${domainName}/${stage}` });
  const answer = reply(event.body ?? "", basename(__filename));
  await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: JSON.stringify(answer) }));
  return { statusCode: 200 };
};
