/**
 * @streamer-go/client: the browser and Node client of Streamer's WebSocket
 * protocol (docs/PROTOCOL.md). Start with StreamerClient.
 */
export { StreamerClient } from "./client.js";
export { ErrorCode, StreamerError, isStreamerError } from "./errors.js";
export { Subscription } from "./subscription.js";
