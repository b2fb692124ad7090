import { backoffOf, delayFor, type Backoff, type ReconnectOptions } from "./backoff.js";
import { ErrorCode, StreamerError } from "./errors.js";
import { PROTOCOL_VERSION, channelEventTypes, handledTypes, isServerMessage, type PresenceMember, type Publication, type ServerMessage } from "./protocol.js";
import { Subscription, type SubscribeOptions, type SubscriptionHost } from "./subscription.js";
import { uuid } from "./uuid.js";

/** Where log lines go: console works, and so does any object with these methods. */
export interface Logger {
  debug?(msg: string, ...args: unknown[]): void;
  info?(msg: string, ...args: unknown[]): void;
  warn?(msg: string, ...args: unknown[]): void;
  error?(msg: string, ...args: unknown[]): void;
}

/** The subset of the WebSocket API the client uses (browsers, Node ≥ 22, and the ws package). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: globalThis.WebSocket, or ws's default export. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Options of new StreamerClient. Every field is optional. */
export interface ClientOptions {
  /**
   * The JWT sent as the `token` query parameter (browsers cannot set
   * headers on a WebSocket). A function is called before every connect and
   * reconnect, so an expiring token is refreshed. Absent: no token.
   */
  token?: string | (() => string | Promise<string>);
  /** Reconnect after the socket closes (full-jitter backoff with a cap). Default true. */
  reconnect?: boolean | ReconnectOptions;
  /** Ping this often, to stay under API Gateway's 10-minute idle timeout. Default 60000; 0 never pings. */
  pingIntervalMs?: number;
  /** A socket that answers nothing this long after a ping is dropped and reconnected. Default 15000. */
  pongTimeoutMs?: number;
  /**
   * Reconnect cleanly after this long, before API Gateway's 2-hour maximum
   * lifetime cuts the socket. Default 115 minutes; 0 never.
   */
  maxLifetimeMs?: number;
  /** Log sink. Default: nothing is logged. */
  logger?: Logger;
  /** The WebSocket implementation. Default globalThis.WebSocket, else the optional peer `ws`. */
  WebSocket?: WebSocketConstructor;
}

/** The connection's state, as `client.state` reports it. */
export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "disconnected" | "closed";

/** Events of client.on, with what each listener receives. */
export interface ClientEvents {
  /** A socket is being opened; attempt 0 is the first, then 1, 2, ... in a row of failures. */
  connecting: { attempt: number };
  /** The socket is open; in-flight requests were resumed and subscriptions resubscribed. */
  connected: { attempt: number };
  /** The socket closed, with its close code (1006 when it was cut without one). */
  disconnected: { code: number; reason: string; willReconnect: boolean };
  /** A reconnect is scheduled after delayMs. */
  reconnecting: { attempt: number; delayMs: number };
  /** The client was closed (close()), or gave up reconnecting. */
  closed: { reason: string };
  /**
   * Content relayed from another client (an app's broadcast: the `data` of
   * a `relay` message), or anything else the server sent that is not a
   * protocol message the client handles. Never taken for a reply.
   */
  message: unknown;
  /** Every text frame in and out, for logs and dev tools. */
  frame: { direction: "in" | "out"; data: string };
  /** A server error with no request to give it to, or a listener that threw. */
  error: { error: unknown };
}

/** Where a publish landed: the channel's offset and epoch for it. */
export interface Published {
  channel: string;
  offset: number;
  epoch: string;
}

/** One progress update of an async request. */
export interface Progress {
  /** The server's request_id. */
  requestId: string;
  percentage: number;
  message?: string;
  details?: unknown;
  /** Which run of the request this is (1 on the first), when the server says. */
  attempt?: number;
}

/** The server queued an async request. */
export interface Ack {
  /** The server's request_id (used by cancel and resume). */
  requestId: string;
  /** The client's id. */
  id: string;
  action?: string;
  /** Which run of the request this is (1 on the first), when the server says. */
  attempt?: number;
}

/** Options of client.request. */
export interface RequestOptions {
  /** Progress of an async request, in order, without duplicates (never a lower percentage within one attempt). */
  onProgress?: (p: Progress) => void;
  /** The server queued the request (async actions only). */
  onAck?: (a: Ack) => void;
  /** Aborting rejects with CANCELLED and sends `cancel` for an async request. */
  signal?: AbortSignal;
  /** Reject with TIMEOUT after this long (an async request is cancelled too). Default: wait for ever. */
  timeoutMs?: number;
  /** The request id (idempotency key of async actions). Default: a new UUID. */
  id?: string;
  /**
   * Send the request again (same id) after a reconnect when no answer or
   * ack came. Async actions deduplicate by id; a sync action could run
   * twice, so pass false for one that must not. Default true.
   */
  retryOnReconnect?: boolean;
}

interface Pending {
  id: string;
  action: string;
  payload: unknown;
  opts: RequestOptions;
  serverId?: string;
  /** Aborted or timed out: the promise is settled, the server still needs a cancel. */
  cancelled: boolean;
  sent: boolean;
  lastPct: number;
  lastMsg?: string | undefined;
  lastAttempt?: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

interface Call {
  resolve: (m: ServerMessage) => void;
  reject: (e: unknown) => void;
}

type Listener<K extends keyof ClientEvents> = (ev: ClientEvents[K]) => void;

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
  readonly url: string;

  #opts: ClientOptions;
  #backoff: Backoff | null;
  #log: Logger;
  #state: ConnectionState = "idle";
  #ws: WebSocketLike | null = null;
  #gen = 0;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: ReturnType<typeof setTimeout> | undefined;
  #lifeTimer: ReturnType<typeof setTimeout> | undefined;
  #immediateReconnect = false;
  #listeners = new Map<keyof ClientEvents, Set<(ev: any) => void>>();
  #byId = new Map<string, Pending>();
  #byServerId = new Map<string, Pending>();
  #calls = new Map<string, Call>();
  #subs = new Map<string, Subscription<any>>();
  /** Unsubscribes in flight by channel (see SubscriptionHost.unsubscribing). */
  #unsubscribing = new Map<string, Promise<void>>();
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(url: string, options: ClientOptions = {}) {
    if (!/^wss?:\/\//i.test(url)) throw new TypeError(`StreamerClient: url must start with ws:// or wss://, got ${JSON.stringify(url)}`);
    for (const k of ["pingIntervalMs", "pongTimeoutMs", "maxLifetimeMs"] as const) {
      const v = options[k];
      if (v !== undefined && !(v >= 0)) throw new RangeError(`StreamerClient: ${k} must be >= 0`);
    }
    this.url = url;
    this.#opts = options;
    this.#backoff = backoffOf(options.reconnect);
    this.#log = options.logger ?? {};
  }

  /** The connection's state now. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Subscribes listener to an event; the returned function unsubscribes it. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Removes a listener added with on. */
  off<K extends keyof ClientEvents>(event: K, listener: Listener<K>): void {
    this.#listeners.get(event)?.delete(listener);
  }

  /**
   * Opens the connection (requests and subscriptions do it too) and
   * resolves once it is open. Rejects when the client is closed first or
   * reconnecting gives up.
   */
  connect(): Promise<void> {
    if (this.#state === "closed") return Promise.reject(new StreamerError(ErrorCode.Closed, "client is closed"));
    if (this.#state === "connected") return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
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
  close(): void {
    if (this.#state === "closed") return;
    this.#setState("closed");
    clearTimeout(this.#reconnectTimer);
    this.#stopTimers();
    this.#gen++;
    const ws = this.#ws;
    this.#ws = null;
    try {
      ws?.close(1000, "client closed");
    } catch {
      // already closing
    }
    const err = new StreamerError(ErrorCode.Closed, "client closed");
    this.#failAll(err);
    for (const s of this.#subs.values()) s.disconnected();
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
  request<T = unknown>(action: string, payload?: unknown, options: RequestOptions = {}): Promise<T> {
    if (this.#state === "closed") return Promise.reject(new StreamerError(ErrorCode.Closed, "client is closed"));
    if (typeof action !== "string" || action === "") return Promise.reject(new TypeError("request: action must be a non-empty string"));
    const signal = options.signal;
    if (signal?.aborted) {
      return Promise.reject(new StreamerError(ErrorCode.Cancelled, "request aborted before it was sent", { cause: signal.reason }));
    }
    const id = options.id ?? uuid();
    if (this.#byId.has(id)) return Promise.reject(new TypeError(`request: id ${id} is already in flight`));
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => this.#cancel(p, new StreamerError(ErrorCode.Cancelled, "request aborted", { requestId: p.serverId ?? id, cause: signal?.reason }));
      const p: Pending = {
        id,
        action,
        payload,
        opts: options,
        cancelled: false,
        sent: false,
        lastPct: -1,
        resolve: resolve as (v: unknown) => void,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () => this.#cancel(p, new StreamerError(ErrorCode.Timeout, `no answer within ${options.timeoutMs} ms`, { requestId: p.serverId ?? id })),
          options.timeoutMs,
        );
      }
      this.#byId.set(id, p);
      if (this.#isOpen()) this.#sendRequest(p);
      else this.#ensureStarted();
    });
  }

  /**
   * Subscribes to a channel. Publications arrive in offset order, each
   * once; after a reconnect the subscription resubscribes with `since` and
   * onSubscribed says whether everything missed was recovered.
   */
  subscribe<T = unknown>(channel: string, options: SubscribeOptions<T>): Subscription<T> {
    if (this.#state === "closed") throw new StreamerError(ErrorCode.Closed, "client is closed");
    if (typeof channel !== "string" || channel === "") throw new TypeError("subscribe: channel must be a non-empty string");
    if (typeof options?.onPublication !== "function") throw new TypeError("subscribe: onPublication is required");
    if (this.#subs.has(channel)) throw new TypeError(`subscribe: already subscribed to ${channel}; unsubscribe first`);
    const sub = new Subscription<T>(this.#host, channel, options);
    this.#subs.set(channel, sub);
    if (this.#isOpen()) sub.subscribe();
    else this.#ensureStarted();
    return sub;
  }

  /** The subscription of a channel, if any. */
  subscription(channel: string): Subscription | undefined {
    return this.#subs.get(channel);
  }

  /**
   * Publishes to a channel (where the app's namespace lets clients
   * publish); resolves with the publication's position.
   */
  async publish(channel: string, data: unknown): Promise<Published> {
    const m = await this.#host.call({ type: "publish", channel, data });
    const d = (m.data ?? m) as Partial<Published>;
    return { channel: typeof d.channel === "string" ? d.channel : channel, offset: Number(d.offset), epoch: String(d.epoch ?? "") };
  }

  #host: SubscriptionHost = {
    call: (msg) => this.#call(msg),
    connected: () => this.#isOpen(),
    forget: (sub) => {
      if (this.#subs.get(sub.channel) === sub) this.#subs.delete(sub.channel);
    },
    unsubscribing: (channel, done) => {
      const tracked: Promise<void> = done.then(
        () => {},
        () => {},
      ).then(() => {
        if (this.#unsubscribing.get(channel) === tracked) this.#unsubscribing.delete(channel);
      });
      this.#unsubscribing.set(channel, tracked);
    },
    unsubscribed: (channel) => this.#unsubscribing.get(channel),
    warn: (msg, ...args) => this.#log.warn?.(msg, ...args),
    report: (where, err) => this.#report(where, err),
  };

  /** Sends a message answered by request_id = its id, once the socket is open. */
  #call(msg: Record<string, unknown>): Promise<ServerMessage> {
    if (this.#state === "closed") return Promise.reject(new StreamerError(ErrorCode.Closed, "client is closed"));
    if (!this.#isOpen()) return this.connect().then(() => this.#call(msg));
    const id = uuid();
    return new Promise<ServerMessage>((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      this.#send({ ...msg, id });
    });
  }

  /** Opens the socket for a request or subscription made before connect() or after reconnecting gave up. */
  #ensureStarted(): void {
    if (this.#state === "idle" || this.#state === "disconnected") this.connect().catch(() => {});
  }

  #isOpen(): boolean {
    return this.#state === "connected" && this.#ws !== null && this.#ws.readyState === OPEN;
  }

  #setState(s: ConnectionState): void {
    this.#state = s;
  }

  async #open(): Promise<void> {
    const gen = ++this.#gen;
    this.#setState(this.#attempt === 0 ? "connecting" : "reconnecting");
    this.#emit("connecting", { attempt: this.#attempt });
    let ws: WebSocketLike;
    try {
      const url = await this.#connectURL();
      const WS = await resolveWebSocket(this.#opts.WebSocket);
      if (gen !== this.#gen) return;
      ws = new WS(url);
    } catch (err) {
      if (gen !== this.#gen) return;
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

  async #connectURL(): Promise<string> {
    const t = this.#opts.token;
    const token = typeof t === "function" ? await t() : t;
    if (token === undefined || token === "") return this.url;
    const u = new URL(this.url);
    u.searchParams.set("token", token);
    return u.toString();
  }

  #opened(): void {
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
      } else if (p.cancelled) {
        this.#drop(p);
      } else if (!p.sent || p.opts.retryOnReconnect !== false) {
        this.#sendRequest(p);
      }
    }
    for (const s of this.#subs.values()) s.subscribe();
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) w.resolve();
    this.#emit("connected", { attempt });
  }

  #closed(gen: number, code: number, reason: string): void {
    if (gen !== this.#gen || this.#state === "closed") return;
    this.#gen++;
    this.#ws = null;
    this.#stopTimers();
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    const lost = new StreamerError(ErrorCode.Disconnected, `socket closed (${code})`);
    for (const c of calls) c.reject(lost);
    for (const s of this.#subs.values()) s.disconnected();
    for (const p of [...this.#byId.values()]) {
      // A sync request that must not run twice cannot learn its answer.
      if (p.sent && p.serverId === undefined && p.opts.retryOnReconnect === false) this.#settle(p, lost);
    }
    const b = this.#backoff;
    const willReconnect = b !== null && this.#attempt < b.maxAttempts;
    this.#log.info?.("streamer: disconnected", code, reason);
    this.#emit("disconnected", { code, reason, willReconnect });
    if ((this.#state as ConnectionState) === "closed") return; // a listener closed the client
    if (!willReconnect) {
      this.#setState("disconnected");
      const err = new StreamerError(ErrorCode.Disconnected, `socket closed (${code}) and reconnect is ${b ? "exhausted" : "off"}`);
      this.#failAll(err);
      for (const w of this.#waiters.splice(0)) w.reject(err);
      return;
    }
    this.#attempt++;
    const delayMs = this.#immediateReconnect ? 0 : delayFor(b!, this.#attempt);
    this.#immediateReconnect = false;
    this.#setState("reconnecting");
    this.#emit("reconnecting", { attempt: this.#attempt, delayMs });
    if ((this.#state as ConnectionState) !== "reconnecting") return;
    this.#reconnectTimer = setTimeout(() => {
      if (this.#state === "reconnecting") void this.#open();
    }, delayMs);
  }

  #startTimers(): void {
    const ping = this.#opts.pingIntervalMs ?? 60_000;
    if (ping > 0) {
      this.#pingTimer = setInterval(() => {
        if (!this.#send({ type: "ping" })) return;
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

  #stopTimers(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#lifeTimer);
    this.#pingTimer = this.#pongTimer = this.#lifeTimer = undefined;
  }

  /** Closes the socket and moves on at once, without waiting for a close handshake a dead peer never answers. */
  #drop_socket(gen: number, code: number, reason: string): void {
    if (gen !== this.#gen) return;
    const ws = this.#ws;
    try {
      ws?.close(code, reason);
    } catch {
      // already closing
    }
    this.#closed(gen, code, reason);
  }

  #send(msg: Record<string, unknown>): boolean {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) return false;
    const data = JSON.stringify({ v: PROTOCOL_VERSION, ...msg });
    this.#emit("frame", { direction: "out", data });
    ws.send(data);
    return true;
  }

  #sendRequest(p: Pending): void {
    const msg: Record<string, unknown> = { type: "request", id: p.id, action: p.action };
    if (p.payload !== undefined) msg.payload = p.payload;
    if (this.#send(msg)) p.sent = true;
  }

  #receive(raw: unknown): void {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    const text = typeof raw === "string" ? raw : String(raw);
    this.#emit("frame", { direction: "in", data: text });
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
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
      if (!(typeof m.request_id === "string" && this.#answerCall(m.request_id, m))) this.#emit("message", m);
      return;
    }
    this.#dispatch(m);
  }

  #dispatch(m: ServerMessage): void {
    const rid = typeof m.request_id === "string" ? m.request_id : undefined;
    switch (m.type) {
      case "ack": {
        const p = typeof m.id === "string" ? this.#byId.get(m.id) : undefined;
        // Only for a request this client sent, and never moving it to
        // another server id.
        if (!p || !p.sent || rid === undefined || (p.serverId !== undefined && p.serverId !== rid)) return;
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
        const ack: Ack = { requestId: rid, id: p.id };
        if (typeof m.action === "string") ack.action = m.action;
        if (typeof m.attempt === "number") ack.attempt = m.attempt;
        this.#callback(p.opts.onAck, ack, "onAck");
        return;
      }
      case "response": {
        const p = rid !== undefined ? this.#byId.get(rid) : undefined;
        if (p && p.sent && p.serverId === undefined) this.#settle(p, undefined, m.data ?? null);
        else if (rid !== undefined) this.#answerCall(rid, m);
        return;
      }
      case "progress": {
        const p = rid !== undefined ? this.#byServerId.get(rid) : undefined;
        if (p && !p.cancelled) this.#progress(p, m);
        return;
      }
      case "complete": {
        const p = rid !== undefined ? this.#byServerId.get(rid) : undefined;
        if (p) this.#settle(p, undefined, m.result ?? null);
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
          if (p) return this.#settle(p, err);
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
        sub?.publication(m as unknown as Publication);
        return;
      }
      case "join":
      case "leave": {
        const sub = typeof m.channel === "string" ? this.#subs.get(m.channel) : undefined;
        if (sub) sub.member(m.type, memberOf(m));
        return;
      }
      case "batch": {
        // Several channel messages in one frame: each handled as if it had
        // arrived on its own, in order.
        const msgs = Array.isArray(m.messages) ? m.messages : [];
        for (const each of msgs) if (isServerMessage(each) && channelEventTypes.has(each.type)) this.#dispatch(each);
        return;
      }
      default: // subscribed, unsubscribed, presence: answers to calls
        if (rid !== undefined && this.#answerCall(rid, m)) return;
        this.#emit("message", m);
    }
  }

  #answerCall(rid: string, m: ServerMessage): boolean {
    const c = this.#calls.get(rid);
    if (!c) return false;
    this.#calls.delete(rid);
    c.resolve(m);
    return true;
  }

  #progress(p: Pending, m: ServerMessage): void {
    const pct = typeof m.percentage === "number" ? m.percentage : 0;
    const attempt = typeof m.attempt === "number" ? m.attempt : undefined;
    if (attempt !== undefined && p.lastAttempt !== undefined) {
      if (attempt < p.lastAttempt) return; // a late update of an earlier run
      if (attempt > p.lastAttempt) p.lastPct = -1; // a retry starts over
    }
    // A resume answers with the latest persisted progress, which repeats
    // (or lags) what the live stream already delivered.
    if (pct < p.lastPct || (pct === p.lastPct && m.message === p.lastMsg)) return;
    p.lastPct = pct;
    p.lastMsg = m.message;
    if (attempt !== undefined) p.lastAttempt = attempt;
    const ev: Progress = { requestId: p.serverId!, percentage: pct };
    if (typeof m.message === "string") ev.message = m.message;
    if (m.details !== undefined) ev.details = m.details;
    if (attempt !== undefined) ev.attempt = attempt;
    this.#callback(p.opts.onProgress, ev, "onProgress");
  }

  /** Rejects a request now; the server learns of it through cancel (async) once it has acked. */
  #cancel(p: Pending, err: StreamerError): void {
    if (p.cancelled || this.#byId.get(p.id) !== p) return;
    p.cancelled = true;
    p.cleanup();
    p.reject(err);
    if (p.serverId !== undefined) this.#send({ type: "cancel", request_id: p.serverId });
    else if (!p.sent) this.#drop(p);
    // else: the ack (async) or response (sync) that comes next settles it.
  }

  #settle(p: Pending, err: unknown, value?: unknown): void {
    this.#drop(p);
    if (p.cancelled) return; // already rejected
    p.cleanup();
    if (err !== undefined) p.reject(err);
    else p.resolve(value);
  }

  #drop(p: Pending): void {
    if (this.#byId.get(p.id) === p) this.#byId.delete(p.id);
    if (p.serverId !== undefined && this.#byServerId.get(p.serverId) === p) this.#byServerId.delete(p.serverId);
  }

  #failAll(err: StreamerError): void {
    for (const p of [...this.#byId.values()]) this.#settle(p, err);
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const c of calls) c.reject(err);
  }

  #callback<A>(cb: ((a: A) => void) | undefined, arg: A, where: string): void {
    if (!cb) return;
    try {
      cb(arg);
    } catch (err) {
      this.#report(where, err);
    }
  }

  #report(where: string, err: unknown): void {
    this.#log.error?.(`streamer: ${where} threw`, err);
    if (where !== "error listener") this.#emit("error", { error: err });
  }

  #emit<K extends keyof ClientEvents>(event: K, ev: ClientEvents[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(ev);
      } catch (err) {
        if (event === "error") this.#log.error?.("streamer: error listener threw", err);
        else this.#report(`${event} listener`, err);
      }
    }
  }
}

function memberOf(m: ServerMessage): PresenceMember {
  const nested = (m.member ?? m.info) as Record<string, unknown> | undefined;
  const src: Record<string, unknown> = nested && typeof nested === "object" ? nested : m;
  const out: PresenceMember = { user_id: String(src.user_id ?? "") };
  if (typeof src.connection_id === "string") out.connection_id = src.connection_id;
  for (const [k, v] of Object.entries(src)) if (!(k in out) && k !== "type" && k !== "v" && k !== "channel") out[k] = v;
  return out;
}

let wsModule: Promise<WebSocketConstructor> | undefined;

/** resolveWebSocket picks the WebSocket: the option, the global one, or the optional peer `ws` (Node < 22). */
async function resolveWebSocket(given?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (given) return given;
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (g) return g;
  // A computed specifier keeps bundlers from pulling ws into browser builds.
  const name = "ws";
  wsModule ??= import(/* @vite-ignore */ name).then(
    (mod: { default?: WebSocketConstructor; WebSocket?: WebSocketConstructor }) => {
      const ctor = mod.WebSocket ?? mod.default;
      if (!ctor) throw new Error("the ws module has no WebSocket export");
      return ctor;
    },
    (err: unknown) => {
      wsModule = undefined;
      throw new StreamerError(ErrorCode.Disconnected, "no global WebSocket: install the optional peer dependency ws (npm i ws) or pass options.WebSocket", { cause: err });
    },
  );
  return wsModule;
}
