import { ErrorCode, StreamerError } from "./errors.js";
import type { PresenceMember, Publication, ServerMessage } from "./protocol.js";

/** A position in a channel's history: what `since` carries. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** What onSubscribed is told after each subscribe the server accepted. */
export interface SubscribedContext extends StreamPosition {
  channel: string;
  /** true when `since` was sent: the client asked to recover missed publications. */
  wasRecovering: boolean;
  /**
   * The server's answer: true when every missed publication was delivered
   * (they came before this callback, through onPublication). false while
   * wasRecovering means some were lost: reload the channel's state.
   */
  recovered: boolean;
  /** true for a resubscribe after a reconnect (or a gap). */
  resubscribed: boolean;
}

/** Options of client.subscribe. */
export interface SubscribeOptions<T = unknown> {
  /** Each publication once, in offset order; duplicates (same epoch, offset already seen) are dropped. */
  onPublication: (p: Publication<T>) => void;
  /** A member joined (when the channel's namespace sends join/leave events). */
  onJoin?: (m: PresenceMember) => void;
  /** A member left. */
  onLeave?: (m: PresenceMember) => void;
  /** After every accepted (re)subscribe: after its recovered publications, before live ones. */
  onSubscribed?: (ctx: SubscribedContext) => void;
  /** A resubscribe after a reconnect was refused; the subscription is then inactive. */
  onError?: (err: StreamerError) => void;
  /** Start from a known position (recover what was published after it). */
  since?: StreamPosition;
  /**
   * How long a publication that arrived ahead of a missing offset waits
   * for it (concurrent publishers can deliver out of order) before the
   * subscription resubscribes with since to fetch the gap from history.
   * Default 1000 ms.
   */
  gapWaitMs?: number;
}

/** What a Subscription needs of its client. */
export interface SubscriptionHost {
  /** Sends a message that the server answers with request_id = its id. */
  call(msg: Record<string, unknown>): Promise<ServerMessage>;
  connected(): boolean;
  forget(sub: Subscription<any>): void;
  /**
   * Records an unsubscribe of channel in flight; while it is, a subscribe
   * of the same channel waits for it (see Subscription.subscribe).
   */
  unsubscribing(channel: string, done: Promise<unknown>): void;
  /** The unsubscribe of channel in flight, settled when it is answered; undefined when none is. */
  unsubscribed(channel: string): Promise<void> | undefined;
  warn(msg: string, ...args: unknown[]): void;
  report(where: string, err: unknown): void;
}

/**
 * Subscription is one channel subscription of a client. It resubscribes by
 * itself after a reconnect, with `since` set to the last position it saw.
 */
export class Subscription<T = unknown> {
  readonly channel: string;
  /** Settles with the first subscribe's answer (or rejects when refused). */
  readonly ready: Promise<SubscribedContext>;

  #host: SubscriptionHost;
  #opts: SubscribeOptions<T>;
  #pos: StreamPosition | undefined;
  #active = true;
  #subscribing = false;
  /** The subscribe in flight, settled (either way) once it is answered. */
  #inflight: Promise<void> | undefined;
  #buffered: Publication<T>[] = [];
  #everSubscribed = false;
  /** Publications ahead of a gap, by offset (same epoch as #pos). */
  #held = new Map<number, Publication<T>>();
  #gapTimer: ReturnType<typeof setTimeout> | undefined;
  #fillingGap = false;
  #resolveReady!: (c: SubscribedContext) => void;
  #rejectReady!: (e: unknown) => void;

  /** @internal Created by StreamerClient.subscribe. */
  constructor(host: SubscriptionHost, channel: string, opts: SubscribeOptions<T>) {
    this.#host = host;
    this.channel = channel;
    this.#opts = opts;
    this.#pos = opts.since ? { ...opts.since } : undefined;
    this.ready = new Promise((res, rej) => {
      this.#resolveReady = res;
      this.#rejectReady = rej;
    });
    // Nobody has to await ready: errors also go to onError.
    this.ready.catch(() => {});
  }

  /** The last offset seen (undefined before the first subscribed). */
  get offset(): number | undefined {
    return this.#pos?.offset;
  }

  /** The channel epoch of offset. */
  get epoch(): string | undefined {
    return this.#pos?.epoch;
  }

  /** false after unsubscribe() or a refused subscribe. */
  get active(): boolean {
    return this.#active;
  }

  /**
   * Stops delivery at once and tells the server (when connected). API
   * Gateway may handle a connection's messages in any order, so the
   * unsubscribe goes out only once a subscribe still in flight is
   * answered: sent together, the subscribe could be handled last and
   * leave the connection subscribed.
   */
  async unsubscribe(): Promise<void> {
    if (!this.#active) return;
    this.#active = false;
    this.#stopGapTimer();
    this.#held.clear();
    this.#host.forget(this);
    this.#rejectReady(new StreamerError(ErrorCode.Cancelled, `unsubscribed from ${this.channel}`));
    const before = this.#inflight;
    const done = (async () => {
      if (before) await before;
      if (!this.#host.connected()) return; // the server drops a closed connection's subscriptions
      await this.#host.call({ type: "unsubscribe", channel: this.channel });
    })();
    this.#host.unsubscribing(this.channel, done);
    await done;
  }

  /** The channel's current members (user_id, connection_id). */
  async presence(): Promise<PresenceMember[]> {
    const m = await this.#host.call({ type: "presence", channel: this.channel });
    return Array.isArray(m.members) ? m.members : [];
  }

  /** @internal Sends subscribe, with since when a position is known. */
  subscribe(): void {
    if (!this.#active || this.#subscribing) return;
    const before = this.#host.unsubscribed(this.channel);
    if (before) {
      // An unsubscribe of this channel is in flight: API Gateway may
      // handle a connection's messages in any order, so the subscribe goes
      // out once it is answered, lest the unsubscribe undo it.
      void before.then(() => {
        if (this.#host.connected()) this.subscribe();
      });
      return;
    }
    this.#subscribing = true;
    const since = this.#pos;
    const resubscribed = this.#everSubscribed;
    const msg: Record<string, unknown> = { type: "subscribe", channel: this.channel };
    if (since) msg.since = { offset: since.offset, epoch: since.epoch };
    const call = this.#host.call(msg);
    const settled = call.then(
      () => {},
      () => {},
    );
    this.#inflight = settled;
    const answered = () => {
      if (this.#inflight === settled) this.#inflight = undefined;
    };
    call.then(
      (m) => {
        answered();
        this.#subscribed(m, since !== undefined, resubscribed);
      },
      (err) => {
        answered();
        this.#refused(err);
      },
    );
  }

  /** @internal The socket closed: the next open resubscribes. */
  disconnected(): void {
    this.#subscribing = false;
    this.#fillingGap = false;
    this.#buffered = [];
    // Held publications stay: the resubscribe's recovery fills the gap
    // before them (or releases them, when it cannot).
    this.#stopGapTimer();
  }

  /** @internal A publication for this channel. */
  publication(p: Publication<T>): void {
    if (!this.#active) return;
    if (this.#subscribing) {
      // Live publications can overtake the subscribed answer that carries
      // the recovered ones: hold them until it has been applied.
      this.#buffered.push(p);
      return;
    }
    this.#deliver(p);
  }

  /** @internal A join or leave event. */
  member(kind: "join" | "leave", m: PresenceMember): void {
    if (!this.#active) return;
    const cb = kind === "join" ? this.#opts.onJoin : this.#opts.onLeave;
    if (!cb) return;
    try {
      cb(m);
    } catch (err) {
      this.#host.report(kind === "join" ? "onJoin" : "onLeave", err);
    }
  }

  #subscribed(m: ServerMessage, wasRecovering: boolean, resubscribed: boolean): void {
    this.#subscribing = false;
    this.#fillingGap = false;
    if (!this.#active) return;
    const answered = Array.isArray(m.publications) ? (m.publications as Publication<T>[]) : [];
    const live = this.#buffered;
    this.#buffered = [];
    const epoch = typeof m.epoch === "string" ? m.epoch : (this.#pos?.epoch ?? "");
    const offset = typeof m.offset === "number" ? m.offset : 0;
    const recovered = m.recovered === true;
    if (!recovered || epoch !== this.#pos?.epoch) this.#releaseHeld(); // the gap cannot be filled
    if (!this.#pos || this.#pos.epoch !== epoch || (wasRecovering && !recovered)) {
      // A fresh start (or history lost): the channel is at offset; the
      // publications the answer carries (if any) come first, live ones
      // follow after offset.
      const carried = answered.filter((p) => p.epoch === epoch).map((p) => p.offset);
      this.#pos = { epoch, offset: carried.length > 0 ? Math.min(offset, Math.min(...carried) - 1) : offset };
    }
    const exact = recovered && this.#pos.epoch === epoch;
    for (const p of [...answered].sort((a, b) => a.offset - b.offset)) {
      if (exact && p.epoch === epoch && p.offset > this.#pos.offset + 1) {
        // A recovered answer holds every publication up to offset: an
        // offset it skips was never stored (its publisher failed before
        // acknowledging it), so p is next.
        this.#held.delete(p.offset);
        this.#pos = { epoch, offset: p.offset - 1 };
      }
      this.#deliver(p);
    }
    if (this.#pos.epoch === epoch && this.#pos.offset < offset) this.#pos = { epoch, offset };
    const ctx: SubscribedContext = { channel: this.channel, offset: this.#pos.offset, epoch: this.#pos.epoch, recovered, wasRecovering, resubscribed };
    this.#everSubscribed = true;
    this.#resolveReady(ctx);
    if (this.#opts.onSubscribed) {
      try {
        this.#opts.onSubscribed(ctx);
      } catch (err) {
        this.#host.report("onSubscribed", err);
      }
    }
    // Live publications that overtook the answer, after it.
    for (const p of live.sort((a, b) => a.offset - b.offset)) this.#deliver(p);
    // History no longer had the gap: deliver what waited beyond it.
    if (this.#held.size > 0 && !this.#gapTimer) this.#releaseHeld();
  }

  #refused(err: unknown): void {
    this.#subscribing = false;
    const e = err instanceof StreamerError ? err : new StreamerError(ErrorCode.Protocol, String(err), { cause: err });
    if (e.code === ErrorCode.Disconnected) return; // resubscribes on the next open
    if (this.#fillingGap) {
      // The server would not resubscribe to fill the gap: the
      // subscription itself is fine; deliver what waited, gap and all.
      this.#fillingGap = false;
      this.#host.warn("streamer: cannot fill a publication gap", this.channel, e.code);
      this.#releaseHeld();
      return;
    }
    this.#active = false;
    this.#host.forget(this);
    this.#rejectReady(e);
    if (this.#opts.onError) {
      try {
        this.#opts.onError(e);
      } catch (cbErr) {
        this.#host.report("onError", cbErr);
      }
    }
  }

  #deliver(p: Publication<T>): void {
    if (!this.#active || typeof p.offset !== "number") return;
    const pos = this.#pos;
    if (pos && p.epoch === pos.epoch) {
      if (p.offset <= pos.offset) return; // a duplicate
      if (p.offset > pos.offset + 1) {
        // Ahead of a missing offset: wait for it, then ask history.
        this.#held.set(p.offset, p);
        this.#gapTimer ??= setTimeout(() => this.#fillGap(), this.#opts.gapWaitMs ?? 1000);
        return;
      }
    } else if (pos) {
      // Another epoch: the channel's history was reset, so what came
      // before may be lost. Resubscribing with since makes the server say
      // so (recovered:false, onSubscribed) and gives the new position.
      if (this.#subscribing) return;
      this.#releaseHeld();
      if (this.#host.connected()) {
        this.#fillingGap = true;
        this.subscribe();
        return;
      }
    }
    this.#emit(p);
    this.#drainHeld();
  }

  /** Delivers held publications that are now next in line. */
  #drainHeld(): void {
    for (let next = this.#held.get(this.#pos!.offset + 1); next; next = this.#held.get(this.#pos!.offset + 1)) {
      this.#held.delete(next.offset);
      this.#emit(next);
    }
    if (this.#held.size === 0) this.#stopGapTimer();
  }

  /** Delivers every held publication in order, accepting the gaps. */
  #releaseHeld(): void {
    this.#stopGapTimer();
    if (this.#held.size === 0) return;
    const held = [...this.#held.values()].sort((a, b) => a.offset - b.offset);
    this.#held.clear();
    this.#host.warn("streamer: publications lost in a gap", this.channel, this.#pos?.offset, held[0]!.offset);
    for (const p of held) if (!this.#pos || p.offset > this.#pos.offset) this.#emit(p);
  }

  #fillGap(): void {
    this.#gapTimer = undefined;
    if (!this.#active || this.#held.size === 0) return;
    if (this.#subscribing || !this.#host.connected()) return; // the pending (re)subscribe recovers
    this.#fillingGap = true;
    this.subscribe();
  }

  #stopGapTimer(): void {
    clearTimeout(this.#gapTimer);
    this.#gapTimer = undefined;
  }

  #emit(p: Publication<T>): void {
    this.#pos = { offset: p.offset, epoch: p.epoch };
    try {
      this.#opts.onPublication(p);
    } catch (err) {
      this.#host.report("onPublication", err);
    }
  }
}
