/**
 * Error codes. The server's codes (docs/PROTOCOL.md, "Error codes") are
 * stable identifiers; the client adds three of its own for what happens on
 * its side of the socket.
 */
export const ErrorCode = {
    InvalidMessage: "INVALID_MESSAGE",
    UnknownAction: "UNKNOWN_ACTION",
    Unauthorized: "UNAUTHORIZED",
    Forbidden: "FORBIDDEN",
    NotFound: "NOT_FOUND",
    RateLimited: "RATE_LIMITED",
    /** A publish was refused because the channel's fan-out is behind; nothing was published. Retry after a while. */
    Overloaded: "OVERLOADED",
    Timeout: "TIMEOUT",
    Internal: "INTERNAL",
    Cancelled: "CANCELLED",
    /** The client was closed (client.close()) before the answer came. */
    Closed: "CLIENT_CLOSED",
    /** The socket closed and reconnect is off (or gave up), so the answer cannot come. */
    Disconnected: "DISCONNECTED",
    /** The server sent something the client cannot read. */
    Protocol: "PROTOCOL_ERROR",
};
/**
 * StreamerError is how every request, subscription and presence call
 * rejects. Branch on `code`, never on `message` (which is for people).
 */
export class StreamerError extends Error {
    /** The protocol error code (ErrorCode), e.g. "UNKNOWN_ACTION". */
    code;
    /** The request it concerns: the server request_id once acked, else the client id. */
    requestId;
    /** When the server says when to try again (OVERLOADED): wait this many milliseconds first. */
    retryAfterMs;
    constructor(code, message, options) {
        super(message, options?.cause === undefined ? undefined : { cause: options.cause });
        this.name = "StreamerError";
        this.code = code;
        if (options?.requestId !== undefined)
            this.requestId = options.requestId;
        if (options?.retryAfterMs !== undefined)
            this.retryAfterMs = options.retryAfterMs;
    }
}
/** isStreamerError narrows an unknown rejection, optionally to one code. */
export function isStreamerError(err, code) {
    return err instanceof StreamerError && (code === undefined || err.code === code);
}
