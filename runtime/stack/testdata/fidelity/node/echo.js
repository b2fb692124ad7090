// An ES module that ships no SDK: it imports the one Lambda's nodejs22.x
// runtime bundles, and answers what the authorizer saw.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

export const handler = async (event) => {
  if (event.requestContext.eventType !== "MESSAGE") return { statusCode: 200 };
  const a = event.requestContext.authorizer;
  return { statusCode: 200, body: JSON.stringify({ sdk: typeof DynamoDBClient, token: a.token, names: a.names, table: process.env.TABLE }) };
};
