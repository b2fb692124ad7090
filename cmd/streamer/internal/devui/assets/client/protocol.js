// The wire messages of docs/PROTOCOL.md (version 1), as the client sends and
// reads them. Unknown fields are ignored; unknown types go to the app's
// "message" listeners.
export const PROTOCOL_VERSION = 1;
/** isServerMessage: an object with a string type, the shape of every protocol message. */
export function isServerMessage(m) {
    return typeof m === "object" && m !== null && !Array.isArray(m) && typeof m.type === "string";
}
/** The message types the client handles itself. */
export const handledTypes = new Set([
    "ack", "response", "progress", "complete", "error", "pong", "relay",
    "subscribed", "unsubscribed", "publication", "presence", "join", "leave", "batch",
]);
/** The channel messages a batch may hold. */
export const channelEventTypes = new Set(["publication", "join", "leave"]);
