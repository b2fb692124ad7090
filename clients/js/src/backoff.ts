/** How the client reconnects after the socket closes. */
export interface ReconnectOptions {
  /** First delay's upper bound, in ms. Default 500. */
  initialDelayMs?: number;
  /** Cap of every delay, in ms. Default 20000. */
  maxDelayMs?: number;
  /** Give up after this many failed attempts in a row. Default Infinity. */
  maxAttempts?: number;
}

export interface Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxAttempts: number;
}

export function backoffOf(o: boolean | ReconnectOptions | undefined): Backoff | null {
  if (o === false) return null;
  const r = o === true || o === undefined ? {} : o;
  const initialDelayMs = r.initialDelayMs ?? 500;
  const maxDelayMs = r.maxDelayMs ?? 20_000;
  const maxAttempts = r.maxAttempts ?? Infinity;
  if (!(initialDelayMs > 0) || !(maxDelayMs >= initialDelayMs) || !(maxAttempts >= 1)) {
    throw new RangeError("reconnect: want 0 < initialDelayMs <= maxDelayMs and maxAttempts >= 1");
  }
  return { initialDelayMs, maxDelayMs, maxAttempts };
}

/**
 * delayFor is "full jitter" (AWS Architecture Blog, Exponential Backoff
 * and Jitter): uniform in [0, min(cap, base * 2^(attempt-1))], so clients
 * that lost the same server do not come back in lockstep.
 */
export function delayFor(b: Backoff, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(b.maxDelayMs, b.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.floor(random() * ceiling);
}
