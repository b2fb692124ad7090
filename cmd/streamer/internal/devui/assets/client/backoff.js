export function backoffOf(o) {
    if (o === false)
        return null;
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
export function delayFor(b, attempt, random = Math.random) {
    const ceiling = Math.min(b.maxDelayMs, b.initialDelayMs * 2 ** Math.min(attempt - 1, 30));
    return Math.floor(random() * ceiling);
}
