// The wire messages of docs/PROTOCOL.md (version 1), as the client sends and
// reads them. Unknown fields are ignored; unknown types go to the app's
// "message" listeners.

export const PROTOCOL_VERSION = 1;

/** One member of a channel's presence. */
export interface PresenceMember {
  user_id: string;
  connection_id?: string;
  [key: string]: unknown;
}

/** A publication on a channel, as the server sends it. */
export interface Publication<T = unknown> {
  channel: string;
  /** Per-channel, strictly increasing by 1 per publication. */
  offset: number;
  /** Changes when the channel's history was lost or reset. */
  epoch: string;
  data: T;
  info?: { user_id?: string; [key: string]: unknown };
}

/** The server messages the client reads. Every field is as loose as JSON. */
export interface ServerMessage {
  v?: number;
  type: string;
  id?: string;
  request_id?: string;
  action?: string;
  attempt?: number;
  data?: unknown;
  result?: unknown;
  percentage?: number;
  message?: string;
  details?: unknown;
  code?: string;
  channel?: string;
  offset?: number;
  epoch?: string;
  recovered?: boolean;
  publications?: Publication[];
  members?: PresenceMember[];
  info?: Record<string, unknown>;
  /** A batch's messages, in order. */
  messages?: unknown[];
  /** error: how long to wait before sending the refused message again (OVERLOADED). */
  retry_after_ms?: number;
  [key: string]: unknown;
}

/** isServerMessage: an object with a string type, the shape of every protocol message. */
export function isServerMessage(m: unknown): m is ServerMessage {
  return typeof m === "object" && m !== null && !Array.isArray(m) && typeof (m as { type?: unknown }).type === "string";
}

/** The message types the client handles itself. */
export const handledTypes = new Set([
  "ack", "response", "progress", "complete", "error", "pong", "relay",
  "subscribed", "unsubscribed", "publication", "presence", "join", "leave", "batch",
]);

/** The channel messages a batch may hold. */
export const channelEventTypes = new Set(["publication", "join", "leave"]);
