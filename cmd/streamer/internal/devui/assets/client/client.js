import { backoffOf, delayFor } from "./backoff.js";
import { ErrorCode, StreamerError } from "./errors.js";
import { PROTOCOL_VERSION, channelEventTypes, handledTypes, isServerMessage } from "./protocol.js";
import { Subscription } from "./subscription.js";
import { uuid } from "./uuid.js";
const OPEN = 1;
const defaultMaxLifetimeMs = 115 * 60 * 1000;
/**
 * StreamerClient is one connection to a Streamer WebSocket API (API
 * Gateway, or `streamer dev`). It reconnects by itself, resumes in-flight
 * async requests and resubscribes channels with recovery.
 *
 *     const client = new StreamerClient("wss://abc.execute-api.eu-west-1.amazonaws.com/prod", { token: getToken });
 *     const result = await client.request("report", { seconds: 3 }, { onProgress: (p) => bar(p.percentage) });
 */
export class StreamerClient {
    url;
    #opts;
    #backoff;
    #log;
    #state = "idle";
    #ws = null;
    #gen = 0;
    #attempt = 0;
    #reconnectTimer;
    #pingTimer;
    #pongTimer;
    #lifeTimer;
    #immediateReconnect = false;
    #listeners = new Map();
    #byId = new Map();
    #byServerId = new Map();
    #calls = new Map();
    #subs = new Map();
    /** Unsubscribes in flight by channel (see SubscriptionHost.unsubscribing). */
    #unsubscribing = new Map();
    #waiters = [];
    constructor(url, options = {}) {
        if (!/^wss?:\/\//i.test(url))
            throw new TypeError(`StreamerClient: url must start with ws:// or wss://, got ${JSON.stringify(url)}`);
        for (const k of ["pingIntervalMs", "pongTimeoutMs", "maxLifetimeMs"]) {
            const v = options[k];
            if (v !== undefined && !(v >= 0))
                throw new RangeError(`StreamerClient: ${k} must be >= 0`);
        }
        this.url = url;
        this.#opts = options;
        this.#backoff = backoffOf(options.reconnect);
        this.#log = options.logger ?? {};
    }
    /** The connection's state now. */
    get state() {
        return this.#state;
    }
    /** Subscribes listener to an event; the returned function unsubscribes it. */
    on(event, listener) {
        let set = this.#listeners.get(event);
        if (!set)
            this.#listeners.set(event, (set = new Set()));
        set.add(listener);
        return () => this.off(event, listener);
    }
    /** Removes a listener added with on. */
    off(event, listener) {
        this.#listeners.get(event)?.delete(listener);
    }
    /**
     * Opens the connection (requests and subscriptions do it too) and
     * resolves once it is open. Rejects when the client is closed first or
     * reconnecting gives up.
     */
    connect() {
        if (this.#state === "closed")
            return Promise.reject(new StreamerError(ErrorCode.Closed, "client is closed"));
        if (this.#state === "connected")
            return Promise.resolve();
        const p = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
        if (this.#state === "idle" || this.#state === "disconnected") {
            this.#attempt = 0;
            void this.#open();
        }
        return p;
    }
    /**
     * Closes the connection for good: no reconnect; pending requests and
     * calls reject with CLIENT_CLOSED. Async requests keep running on the
     * server (a new client of the same user can resume them).
     */
    close() {
        if (this.#state === "closed")
            return;
        this.#setState("closed");
        clearTimeout(this.#reconnectTimer);
        this.#stopTimers();
        this.#gen++;
        const ws = this.#ws;
        this.#ws = null;
        try {
            ws?.close(1000, "client closed");
        }
        catch {
            // already closing
        }
        const err = new StreamerError(ErrorCode.Closed, "client closed");
        this.#failAll(err);
        for (const s of this.#subs.values())
            s.disconnected();
        this.#subs.clear();
        this.#emit("closed", { reason: "client closed" });
    }
    /**
     * Runs an action. Resolves with a sync action's `data` or an async
     * action's `result`; rejects with a StreamerError whose code is the
     * protocol's (UNKNOWN_ACTION, INVALID_MESSAGE, CANCELLED, ...). An async
     * request in flight across a reconnect is resumed, so the promise still
     * settles.
     */
    request(action, payload, options = {}) {
        if (this.#state === "closed")
            return Promise.reject(new StreamerError(ErrorCode.Closed, "client is closed"));
        if (typeof action !== "string" || action === "")
            return Promise.reject(new TypeError("request: action must be a non-empty string"));
        const signal = options.signal;
        if (signal?.aborted) {
            return Promise.reject(new StreamerError(ErrorCode.Cancelled, "request aborted before it was sent", { cause: signal.reason }));
        }
        const id = options.id ?? uuid();
        if (this.#byId.has(id))
            return Promise.reject(new TypeError(`request: id ${id} is already in flight`));
        return new Promise((resolve, reject) => {
            let timer;
            const onAbort = () => this.#cancel(p, new StreamerError(ErrorCode.Cancelled, "request aborted", { requestId: p.serverId ?? id, cause: signal?.reason }));
            const p = {
                id,
                action,
                payload,
                opts: options,
                cancelled: false,
                sent: false,
                lastPct: -1,
                resolve: resolve,
                reject,
                cleanup: () => {
                    clearTimeout(timer);
                    signal?.removeEventListener("abort", onAbort);
                },
            };
            signal?.addEventListener("abort", onAbort, { once: true });
            if (options.timeoutMs !== undefined) {
                timer = setTimeout(() => this.#cancel(p, new StreamerError(ErrorCode.Timeout, `no answer within ${options.timeoutMs} ms`, { requestId: p.serverId ?? id })), options.timeoutMs);
            }
            this.#byId.set(id, p);
            if (this.#isOpen())
                this.#sendRequest(p);
            else
                this.#ensureStarted();
        });
    }
    /**
     * Subscribes to a channel. Publications arrive in offset order, each
     * once; after a reconnect the subscription resubscribes with `since` and
     * onSubscribed says whether everything missed was recovered.
     */
    subscribe(channel, options) {
        if (this.#state === "closed")
            throw new StreamerError(ErrorCode.Closed, "client is closed");
        if (typeof channel !== "string" || channel === "")
            throw new TypeError("subscribe: channel must be a non-empty string");
        if (typeof options?.onPublication !== "function")
            throw new TypeError("subscribe: onPublication is required");
        if (this.#subs.has(channel))
            throw new TypeError(`subscribe: already subscribed to ${channel}; unsubscribe first`);
        const sub = new Subscription(this.#host, channel, options);
        this.#subs.set(channel, sub);
        if (this.#isOpen())
            sub.subscribe();
        else
            this.#ensureStarted();
        return sub;
    }
    /** The subscription of a channel, if any. */
    subscription(channel) {
        return this.#subs.get(channel);
    }
    /**
     * Publishes to a channel (where the app's namespace lets clients
     * publish); resolves with the publication's position.
     */
    async publish(channel, data) {
        const m = await this.#host.call({ type: "publish", channel, data });
        const d = (m.data ?? m);
        return { channel: typeof d.channel === "string" ? d.channel : channel, offset: Number(d.offset), epoch: String(d.epoch ?? "") };
    }
    #host = {
        call: (msg) => this.#call(msg),
        connected: () => this.#isOpen(),
        forget: (sub) => {
            if (this.#subs.get(sub.channel) === sub)
                this.#subs.delete(sub.channel);
        },
        unsubscribing: (channel, done) => {
            const tracked = done.then(() => { }, () => { }).then(() => {
                if (this.#unsubscribing.get(channel) === tracked)
                    this.#unsubscribing.delete(channel);
            });
            this.#unsubscribing.set(channel, tracked);
        },
        unsubscribed: (channel) => this.#unsubscribing.get(channel),
        warn: (msg, ...args) => this.#log.warn?.(msg, ...args),
        report: (where, err) => this.#report(where, err),
    };
    /** Sends a message answered by request_id = its id, once the socket is open. */
    #call(msg) {
        if (this.#state === "closed")
            return Promise.reject(new StreamerError(ErrorCode.Closed, "client is closed"));
        if (!this.#isOpen())
            return this.connect().then(() => this.#call(msg));
        const id = uuid();
        return new Promise((resolve, reject) => {
            this.#calls.set(id, { resolve, reject });
            this.#send({ ...msg, id });
        });
    }
    /** Opens the socket for a request or subscription made before connect() or after reconnecting gave up. */
    #ensureStarted() {
        if (this.#state === "idle" || this.#state === "disconnected")
            this.connect().catch(() => { });
    }
    #isOpen() {
        return this.#state === "connected" && this.#ws !== null && this.#ws.readyState === OPEN;
    }
    #setState(s) {
        this.#state = s;
    }
    async #open() {
        const gen = ++this.#gen;
        this.#setState(this.#attempt === 0 ? "connecting" : "reconnecting");
        this.#emit("connecting", { attempt: this.#attempt });
        let ws;
        try {
            const url = await this.#connectURL();
            const WS = await resolveWebSocket(this.#opts.WebSocket);
            if (gen !== this.#gen)
                return;
            ws = new WS(url);
        }
        catch (err) {
            if (gen !== this.#gen)
                return;
            this.#log.warn?.("streamer: cannot open the socket", err);
            this.#emit("error", { error: err });
            this.#closed(gen, 1006, "cannot open: " + String(err));
            return;
        }
        this.#ws = ws;
        ws.onopen = () => gen === this.#gen && this.#opened();
        ws.onmessage = (ev) => gen === this.#gen && this.#receive(ev.data);
        ws.onclose = (ev) => this.#closed(gen, ev.code, ev.reason);
        ws.onerror = () => this.#log.debug?.("streamer: socket error");
    }
    async #connectURL() {
        const t = this.#opts.token;
        const token = typeof t === "function" ? await t() : t;
        if (token === undefined || token === "")
            return this.url;
        const u = new URL(this.url);
        u.searchParams.set("token", token);
        return u.toString();
    }
    #opened() {
        const attempt = this.#attempt;
        this.#attempt = 0;
        this.#setState("connected");
        this.#log.info?.("streamer: connected", this.url);
        this.#startTimers();
        // Pick up where the last socket left off: resume what the server
        // acked, send what it never saw, cancel what was aborted meanwhile.
        for (const p of [...this.#byId.values()]) {
            if (p.serverId !== undefined) {
                this.#send(p.cancelled ? { type: "cancel", request_id: p.serverId } : { type: "resume", request_id: p.serverId });
            }
            else if (p.cancelled) {
                this.#drop(p);
            }
            else if (!p.sent || p.opts.retryOnReconnect !== false) {
                this.#sendRequest(p);
            }
        }
        for (const s of this.#subs.values())
            s.subscribe();
        const waiters = this.#waiters.splice(0);
        for (const w of waiters)
            w.resolve();
        this.#emit("connected", { attempt });
    }
    #closed(gen, code, reason) {
        if (gen !== this.#gen || this.#state === "closed")
            return;
        this.#gen++;
        this.#ws = null;
        this.#stopTimers();
        const calls = [...this.#calls.values()];
        this.#calls.clear();
        const lost = new StreamerError(ErrorCode.Disconnected, `socket closed (${code})`);
        for (const c of calls)
            c.reject(lost);
        for (const s of this.#subs.values())
            s.disconnected();
        for (const p of [...this.#byId.values()]) {
            // A sync request that must not run twice cannot learn its answer.
            if (p.sent && p.serverId === undefined && p.opts.retryOnReconnect === false)
                this.#settle(p, lost);
        }
        const b = this.#backoff;
        const willReconnect = b !== null && this.#attempt < b.maxAttempts;
        this.#log.info?.("streamer: disconnected", code, reason);
        this.#emit("disconnected", { code, reason, willReconnect });
        if (this.#state === "closed")
            return; // a listener closed the client
        if (!willReconnect) {
            this.#setState("disconnected");
            const err = new StreamerError(ErrorCode.Disconnected, `socket closed (${code}) and reconnect is ${b ? "exhausted" : "off"}`);
            this.#failAll(err);
            for (const w of this.#waiters.splice(0))
                w.reject(err);
            return;
        }
        this.#attempt++;
        const delayMs = this.#immediateReconnect ? 0 : delayFor(b, this.#attempt);
        this.#immediateReconnect = false;
        this.#setState("reconnecting");
        this.#emit("reconnecting", { attempt: this.#attempt, delayMs });
        if (this.#state !== "reconnecting")
            return;
        this.#reconnectTimer = setTimeout(() => {
            if (this.#state === "reconnecting")
                void this.#open();
        }, delayMs);
    }
    #startTimers() {
        const ping = this.#opts.pingIntervalMs ?? 60_000;
        if (ping > 0) {
            this.#pingTimer = setInterval(() => {
                if (!this.#send({ type: "ping" }))
                    return;
                if (this.#pongTimer === undefined) {
                    const gen = this.#gen;
                    this.#pongTimer = setTimeout(() => this.#drop_socket(gen, 4000, "no pong"), this.#opts.pongTimeoutMs ?? 15_000);
                }
            }, ping);
        }
        const life = this.#opts.maxLifetimeMs ?? defaultMaxLifetimeMs;
        if (life > 0) {
            const gen = this.#gen;
            this.#lifeTimer = setTimeout(() => {
                this.#immediateReconnect = true;
                this.#drop_socket(gen, 1000, "max lifetime");
            }, life);
        }
    }
    #stopTimers() {
        clearInterval(this.#pingTimer);
        clearTimeout(this.#pongTimer);
        clearTimeout(this.#lifeTimer);
        this.#pingTimer = this.#pongTimer = this.#lifeTimer = undefined;
    }
    /** Closes the socket and moves on at once, without waiting for a close handshake a dead peer never answers. */
    #drop_socket(gen, code, reason) {
        if (gen !== this.#gen)
            return;
        const ws = this.#ws;
        try {
            ws?.close(code, reason);
        }
        catch {
            // already closing
        }
        this.#closed(gen, code, reason);
    }
    #send(msg) {
        const ws = this.#ws;
        if (!ws || ws.readyState !== OPEN)
            return false;
        const data = JSON.stringify({ v: PROTOCOL_VERSION, ...msg });
        this.#emit("frame", { direction: "out", data });
        ws.send(data);
        return true;
    }
    #sendRequest(p) {
        const msg = { type: "request", id: p.id, action: p.action };
        if (p.payload !== undefined)
            msg.payload = p.payload;
        if (this.#send(msg))
            p.sent = true;
    }
    #receive(raw) {
        clearTimeout(this.#pongTimer);
        this.#pongTimer = undefined;
        const text = typeof raw === "string" ? raw : String(raw);
        this.#emit("frame", { direction: "in", data: text });
        let m;
        try {
            m = JSON.parse(text);
        }
        catch {
            this.#emit("message", text);
            return;
        }
        if (!isServerMessage(m)) {
            this.#emit("message", m);
            return;
        }
        if (!handledTypes.has(m.type)) {
            // A reply type this client does not know (a newer server's) still
            // answers the call that named its id.
            if (!(typeof m.request_id === "string" && this.#answerCall(m.request_id, m)))
                this.#emit("message", m);
            return;
        }
        this.#dispatch(m);
    }
    #dispatch(m) {
        const rid = typeof m.request_id === "string" ? m.request_id : undefined;
        switch (m.type) {
            case "ack": {
                const p = typeof m.id === "string" ? this.#byId.get(m.id) : undefined;
                // Only for a request this client sent, and never moving it to
                // another server id.
                if (!p || !p.sent || rid === undefined || (p.serverId !== undefined && p.serverId !== rid))
                    return;
                if (typeof m.attempt === "number" && (p.lastAttempt === undefined || m.attempt > p.lastAttempt)) {
                    p.lastAttempt = m.attempt;
                    p.lastPct = -1;
                }
                p.serverId = rid;
                this.#byServerId.set(rid, p);
                if (p.cancelled) {
                    this.#send({ type: "cancel", request_id: rid });
                    return;
                }
                const ack = { requestId: rid, id: p.id };
                if (typeof m.action === "string")
                    ack.action = m.action;
                if (typeof m.attempt === "number")
                    ack.attempt = m.attempt;
                this.#callback(p.opts.onAck, ack, "onAck");
                return;
            }
            case "response": {
                const p = rid !== undefined ? this.#byId.get(rid) : undefined;
                if (p && p.sent && p.serverId === undefined)
                    this.#settle(p, undefined, m.data ?? null);
                else if (rid !== undefined)
                    this.#answerCall(rid, m);
                return;
            }
            case "progress": {
                const p = rid !== undefined ? this.#byServerId.get(rid) : undefined;
                if (p && !p.cancelled)
                    this.#progress(p, m);
                return;
            }
            case "complete": {
                const p = rid !== undefined ? this.#byServerId.get(rid) : undefined;
                if (p)
                    this.#settle(p, undefined, m.result ?? null);
                return;
            }
            case "error": {
                const err = new StreamerError(typeof m.code === "string" ? m.code : ErrorCode.Protocol, typeof m.message === "string" ? m.message : "error", {
                    ...(rid !== undefined ? { requestId: rid } : {}),
                    ...(typeof m.retry_after_ms === "number" && m.retry_after_ms > 0 ? { retryAfterMs: m.retry_after_ms } : {}),
                });
                if (rid !== undefined) {
                    // The server names an async request by its server id, anything
                    // else by the client's id, and only once it was sent.
                    const bySid = this.#byServerId.get(rid);
                    const byId = this.#byId.get(rid);
                    const p = bySid ?? (byId && byId.sent && byId.serverId === undefined ? byId : undefined);
                    if (p)
                        return this.#settle(p, err);
                    const c = this.#calls.get(rid);
                    if (c) {
                        this.#calls.delete(rid);
                        return c.reject(err);
                    }
                }
                this.#log.warn?.("streamer: server error", err.code, err.message);
                this.#emit("error", { error: err });
                return;
            }
            case "pong":
                return;
            case "relay":
                // Another client's content: the app's, whatever it says.
                this.#emit("message", m.data);
                return;
            case "publication": {
                const sub = typeof m.channel === "string" ? this.#subs.get(m.channel) : undefined;
                sub?.publication(m);
                return;
            }
            case "join":
            case "leave": {
                const sub = typeof m.channel === "string" ? this.#subs.get(m.channel) : undefined;
                if (sub)
                    sub.member(m.type, memberOf(m));
                return;
            }
            case "batch": {
                // Several channel messages in one frame: each handled as if it had
                // arrived on its own, in order.
                const msgs = Array.isArray(m.messages) ? m.messages : [];
                for (const each of msgs)
                    if (isServerMessage(each) && channelEventTypes.has(each.type))
                        this.#dispatch(each);
                return;
            }
            default: // subscribed, unsubscribed, presence: answers to calls
                if (rid !== undefined && this.#answerCall(rid, m))
                    return;
                this.#emit("message", m);
        }
    }
    #answerCall(rid, m) {
        const c = this.#calls.get(rid);
        if (!c)
            return false;
        this.#calls.delete(rid);
        c.resolve(m);
        return true;
    }
    #progress(p, m) {
        const pct = typeof m.percentage === "number" ? m.percentage : 0;
        const attempt = typeof m.attempt === "number" ? m.attempt : undefined;
        if (attempt !== undefined && p.lastAttempt !== undefined) {
            if (attempt < p.lastAttempt)
                return; // a late update of an earlier run
            if (attempt > p.lastAttempt)
                p.lastPct = -1; // a retry starts over
        }
        // A resume answers with the latest persisted progress, which repeats
        // (or lags) what the live stream already delivered.
        if (pct < p.lastPct || (pct === p.lastPct && m.message === p.lastMsg))
            return;
        p.lastPct = pct;
        p.lastMsg = m.message;
        if (attempt !== undefined)
            p.lastAttempt = attempt;
        const ev = { requestId: p.serverId, percentage: pct };
        if (typeof m.message === "string")
            ev.message = m.message;
        if (m.details !== undefined)
            ev.details = m.details;
        if (attempt !== undefined)
            ev.attempt = attempt;
        this.#callback(p.opts.onProgress, ev, "onProgress");
    }
    /** Rejects a request now; the server learns of it through cancel (async) once it has acked. */
    #cancel(p, err) {
        if (p.cancelled || this.#byId.get(p.id) !== p)
            return;
        p.cancelled = true;
        p.cleanup();
        p.reject(err);
        if (p.serverId !== undefined)
            this.#send({ type: "cancel", request_id: p.serverId });
        else if (!p.sent)
            this.#drop(p);
        // else: the ack (async) or response (sync) that comes next settles it.
    }
    #settle(p, err, value) {
        this.#drop(p);
        if (p.cancelled)
            return; // already rejected
        p.cleanup();
        if (err !== undefined)
            p.reject(err);
        else
            p.resolve(value);
    }
    #drop(p) {
        if (this.#byId.get(p.id) === p)
            this.#byId.delete(p.id);
        if (p.serverId !== undefined && this.#byServerId.get(p.serverId) === p)
            this.#byServerId.delete(p.serverId);
    }
    #failAll(err) {
        for (const p of [...this.#byId.values()])
            this.#settle(p, err);
        const calls = [...this.#calls.values()];
        this.#calls.clear();
        for (const c of calls)
            c.reject(err);
    }
    #callback(cb, arg, where) {
        if (!cb)
            return;
        try {
            cb(arg);
        }
        catch (err) {
            this.#report(where, err);
        }
    }
    #report(where, err) {
        this.#log.error?.(`streamer: ${where} threw`, err);
        if (where !== "error listener")
            this.#emit("error", { error: err });
    }
    #emit(event, ev) {
        const set = this.#listeners.get(event);
        if (!set)
            return;
        for (const l of [...set]) {
            try {
                l(ev);
            }
            catch (err) {
                if (event === "error")
                    this.#log.error?.("streamer: error listener threw", err);
                else
                    this.#report(`${event} listener`, err);
            }
        }
    }
}
function memberOf(m) {
    const nested = (m.member ?? m.info);
    const src = nested && typeof nested === "object" ? nested : m;
    const out = { user_id: String(src.user_id ?? "") };
    if (typeof src.connection_id === "string")
        out.connection_id = src.connection_id;
    for (const [k, v] of Object.entries(src))
        if (!(k in out) && k !== "type" && k !== "v" && k !== "channel")
            out[k] = v;
    return out;
}
let wsModule;
/** resolveWebSocket picks the WebSocket: the option, the global one, or the optional peer `ws` (Node < 22). */
async function resolveWebSocket(given) {
    if (given)
        return given;
    const g = globalThis.WebSocket;
    if (g)
        return g;
    // A computed specifier keeps bundlers from pulling ws into browser builds.
    const name = "ws";
    wsModule ??= import(/* @vite-ignore */ name).then((mod) => {
        const ctor = mod.WebSocket ?? mod.default;
        if (!ctor)
            throw new Error("the ws module has no WebSocket export");
        return ctor;
    }, (err) => {
        wsModule = undefined;
        throw new StreamerError(ErrorCode.Disconnected, "no global WebSocket: install the optional peer dependency ws (npm i ws) or pass options.WebSocket", { cause: err });
    });
    return wsModule;
}
