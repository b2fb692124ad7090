/**
 * @streamer-go/client: the browser and Node client of Streamer's WebSocket
 * protocol (docs/PROTOCOL.md). Start with StreamerClient.
 */
export { StreamerClient } from "./client.js";
export type { Ack, ClientEvents, ClientOptions, ConnectionState, Logger, Progress, Published, RequestOptions, WebSocketConstructor, WebSocketLike } from "./client.js";
export { ErrorCode, StreamerError, isStreamerError } from "./errors.js";
export type { ErrorCodeValue } from "./errors.js";
export type { ReconnectOptions } from "./backoff.js";
export { Subscription } from "./subscription.js";
export type { StreamPosition, SubscribeOptions, SubscribedContext } from "./subscription.js";
export type { PresenceMember, Publication, ServerMessage } from "./protocol.js";
