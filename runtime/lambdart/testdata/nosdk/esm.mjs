// An ES module handler that ships no SDK and imports the one Lambda's
// nodejs18.x and later runtimes bundle.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";

export const handler = async () => ({ sdk: typeof DynamoDBClient });
