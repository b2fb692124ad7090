// The client against a real `streamer dev` process: requests, progress,
// cancel, typed errors, state events, reconnect + resume, token refresh.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ErrorCode, StreamerClient, StreamerError, isStreamerError } from "../dist/index.js";
import { once, signHS256, startDev, until } from "./dev.mjs";

/** client makes a client that records its frames and events, closed after the test. */
function client(t, url, opts = {}) {
  const c = new StreamerClient(url, { reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, ...opts });
  c.frames = [];
  c.events = [];
  c.on("frame", (f) => c.frames.push({ ...f, msg: JSON.parse(f.data) }));
  for (const e of ["connecting", "connected", "disconnected", "reconnecting", "closed"]) c.on(e, (ev) => c.events.push([e, ev]));
  t.after(() => c.close());
  return c;
}
const sent = (c, type) => c.frames.filter((f) => f.direction === "out" && f.msg.type === type).map((f) => f.msg);
const got = (c, type) => c.frames.filter((f) => f.direction === "in" && f.msg.type === type).map((f) => f.msg);

describe("against streamer dev", () => {
  let dev;
  before(async () => { dev = await startDev(); });
  after(async () => { assert.equal(await dev.stop(), 0, "streamer dev exits 0 on SIGTERM"); });

  test("sync request resolves with the data; ids are UUIDs", async (t) => {
    // Node 20 has no global WebSocket: these tests run the client through
    // its optional peer ws (the browser tests run the global one).
    if (process.versions.node.startsWith("20.")) assert.equal(globalThis.WebSocket, undefined);
    const c = client(t, dev.wsURL);
    assert.deepEqual(await c.request("echo", { text: "hi" }), { text: "hi" });
    assert.equal(await c.request("echo"), null);
    const me = await c.request("whoami");
    assert.equal(me.userId, "anonymous");
    const ids = sent(c, "request").map((m) => m.id);
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(sent(c, "request").every((m) => m.v === 1));
  });

  test("unknown actions and bad payloads reject with a typed StreamerError", async (t) => {
    const c = client(t, dev.wsURL);
    await assert.rejects(c.request("no-such-action"), (e) => e instanceof StreamerError && e.code === ErrorCode.UnknownAction && typeof e.requestId === "string");
    await assert.rejects(c.request("report", { seconds: 9999 }), (e) => isStreamerError(e, "INVALID_MESSAGE"));
    await assert.rejects(c.request("report", { seconds: "soon" }), (e) => isStreamerError(e, "INVALID_MESSAGE"));
    await assert.rejects(c.request("broadcast"), (e) => isStreamerError(e, "INVALID_MESSAGE"));
    // The socket survives errors.
    assert.deepEqual(await c.request("echo", 1), 1);
    assert.equal(c.state, "connected");
  });

  test("async request: ack, progress in order up to 100, then the result", async (t) => {
    const c = client(t, dev.wsURL);
    const progress = [];
    const acks = [];
    const result = await c.request("report", { seconds: 0.6 }, { onProgress: (p) => progress.push(p), onAck: (a) => acks.push(a) });
    assert.deepEqual(result, { steps: 6, seconds: 0.6 });
    assert.equal(acks.length, 1);
    assert.match(acks[0].requestId, /^r-/);
    assert.equal(acks[0].action, "report");
    const pcts = progress.map((p) => p.percentage);
    assert.equal(pcts.at(-1), 100);
    for (let i = 1; i < pcts.length; i++) assert.ok(pcts[i] > pcts[i - 1], `progress in order: ${pcts}`);
    assert.ok(progress.every((p) => p.requestId === acks[0].requestId));
    assert.equal(progress.at(-1).message, "step 6 of 6");
  });

  test("AbortSignal rejects with CANCELLED and sends cancel; the server cancels the run", async (t) => {
    const c = client(t, dev.wsURL);
    const ac = new AbortController();
    const progress = [];
    const p = c.request("report", { seconds: 5 }, { signal: ac.signal, onProgress: (pr) => { progress.push(pr.percentage); if (progress.length === 2) ac.abort(); } });
    await assert.rejects(p, (e) => isStreamerError(e, "CANCELLED"));
    const rid = got(c, "ack")[0].request_id;
    assert.deepEqual(sent(c, "cancel").map((m) => m.request_id), [rid]);
    // The server's answer to the cancel, and no complete.
    await until(() => got(c, "error").some((m) => m.request_id === rid && m.code === "CANCELLED"), 5000, "the server's CANCELLED");
    assert.equal(got(c, "complete").length, 0);
    const n = progress.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(progress.length === n, "no progress callback after abort");
  });

  test("an already aborted signal sends nothing; timeoutMs rejects with TIMEOUT and cancels", async (t) => {
    const c = client(t, dev.wsURL);
    await c.connect();
    await assert.rejects(c.request("echo", 1, { signal: AbortSignal.abort() }), (e) => isStreamerError(e, "CANCELLED"));
    assert.equal(sent(c, "request").length, 0);
    await assert.rejects(c.request("report", { seconds: 5 }, { timeoutMs: 300 }), (e) => isStreamerError(e, "TIMEOUT"));
    await until(() => sent(c, "cancel").length === 1, 5000, "cancel after the timeout");
  });

  test("state events, and reconnect + resume: a request whose socket is killed still resolves, no duplicate progress", async (t) => {
    const c = client(t, dev.wsURL);
    await c.connect();
    assert.deepEqual(c.events.map((e) => e[0]), ["connecting", "connected"]);
    const first = (await c.request("whoami")).connectionId;
    const progress = [];
    let killed = false;
    // Killed at 10 % of a 3 s report: the DELETE has 2.7 s to land before
    // the result could still arrive on the old socket (then nothing would
    // be left to resume; a 1.5 s report killed at 30 % lost that race once
    // on a loaded machine).
    const p = c.request("report", { seconds: 3 }, {
      onProgress: (pr) => {
        progress.push(pr.percentage);
        if (!killed && pr.percentage >= 10) {
          killed = true;
          dev.disconnect(first).then((s) => assert.equal(s, 204));
        }
      },
    });
    const result = await p;
    assert.deepEqual(result, { steps: 30, seconds: 3 });
    assert.ok(killed, "the socket was killed mid-request");
    const rid = got(c, "ack")[0].request_id;
    assert.deepEqual(sent(c, "resume").map((m) => m.request_id), [rid], "resumed once, by the server id");
    assert.equal(progress.filter((x) => x === 100).length, 1, `one 100: ${progress}`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i] > progress[i - 1], `no duplicate or backwards progress: ${progress}`);
    const names = c.events.map((e) => e[0]);
    assert.deepEqual(names.slice(0, 6), ["connecting", "connected", "disconnected", "reconnecting", "connecting", "connected"]);
    const disc = c.events.find((e) => e[0] === "disconnected")[1];
    assert.equal(disc.code, 1000, "DELETE @connections closes with 1000");
    assert.equal(disc.willReconnect, true);
    assert.equal(c.events.find((e) => e[0] === "reconnecting")[1].attempt, 1);
    const second = (await c.request("whoami")).connectionId;
    assert.notEqual(second, first);
  });

  test("a request made while disconnected is sent after the reconnect", async (t) => {
    const c = client(t, dev.wsURL, { reconnect: { initialDelayMs: 300, maxDelayMs: 300 } });
    const id = (await c.request("whoami")).connectionId;
    const down = once(c, "disconnected");
    await dev.disconnect(id);
    await down;
    assert.notEqual(c.state, "connected");
    assert.deepEqual(await c.request("echo", "later"), "later");
  });

  test("pings keep the socket alive, and the lifetime limit reconnects cleanly with requests in flight", async (t) => {
    const c = client(t, dev.wsURL, { pingIntervalMs: 100, maxLifetimeMs: 700 });
    const progress = [];
    const result = await c.request("report", { seconds: 1.2 }, { onProgress: (p) => progress.push(p.percentage) });
    assert.deepEqual(result, { steps: 12, seconds: 1.2 });
    assert.ok(sent(c, "ping").length >= 3, "pings sent");
    assert.ok(got(c, "pong").length >= 3, "pongs answered");
    const disc = c.events.find((e) => e[0] === "disconnected");
    assert.ok(disc, "the lifetime limit closed the socket");
    assert.equal(disc[1].reason, "max lifetime");
    assert.equal(c.events.find((e) => e[0] === "reconnecting")[1].delayMs, 0, "reconnects at once");
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i] > progress[i - 1], `progress: ${progress}`);
  });

  test("reconnect off: the in-flight request rejects with DISCONNECTED", async (t) => {
    const c = client(t, dev.wsURL, { reconnect: false });
    const id = (await c.request("whoami")).connectionId;
    const p = c.request("report", { seconds: 3 }, { onAck: () => dev.disconnect(id) });
    await assert.rejects(p, (e) => isStreamerError(e, "DISCONNECTED"));
    assert.equal(c.state, "disconnected");
    assert.deepEqual(c.events.at(-1), ["disconnected", { code: 1000, reason: c.events.at(-1)[1].reason, willReconnect: false }]);
  });

  test("close() rejects pending requests with CLIENT_CLOSED and stops reconnecting", async (t) => {
    const c = client(t, dev.wsURL);
    const p = c.request("report", { seconds: 3 }, { onAck: () => c.close() });
    await assert.rejects(p, (e) => isStreamerError(e, "CLIENT_CLOSED"));
    assert.equal(c.state, "closed");
    await assert.rejects(c.request("echo"), (e) => isStreamerError(e, "CLIENT_CLOSED"));
  });

  test("broadcast payloads arrive as message events", async (t) => {
    const a = client(t, dev.wsURL);
    const b = client(t, dev.wsURL);
    await Promise.all([a.connect(), b.connect()]);
    const inbox = once(b, "message");
    const r = await a.request("broadcast", { hello: "tabs" });
    assert.ok(r.recipients >= 2);
    assert.deepEqual(await inbox, { hello: "tabs" });
    assert.equal(got(b, "relay").at(-1).data.hello, "tabs", "the copy travels in a relay envelope");
  });
});

describe("with auth on", () => {
  const secret = "a-test-secret-of-at-least-32-bytes-long!";
  let dev;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), "streamer-js-"));
    const file = join(dir, "secret");
    writeFileSync(file, secret);
    dev = await startDev(null, "--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", file);
  });
  after(async () => { assert.equal(await dev.stop(), 0); });

  test("the token function is called on every (re)connect, so an expired or bad token is replaced", async (t) => {
    const tokens = [];
    // The first token is refused (bad signature): the upgrade fails, the
    // client backs off and asks for a new token, which works.
    const c = client(t, dev.wsURL, {
      token: async () => {
        const tok = tokens.length === 0 ? signHS256("wrong-secret-wrong-secret-wrong-secret!!", { sub: "u1" }) : signHS256(secret, { sub: "u1", tenant_id: "t1", n: tokens.length });
        tokens.push(tok);
        return tok;
      },
    });
    const me = await c.request("whoami");
    assert.equal(me.userId, "u1");
    assert.equal(me.tenantId, "t1");
    assert.equal(tokens.length, 2);
    assert.equal(c.events.find((e) => e[0] === "disconnected")[1].code, 1006, "a refused upgrade is an abnormal close");
    // A server-side disconnect: the reconnect asks for a fresh token again.
    await dev.disconnect(me.connectionId);
    await until(() => c.events.filter((e) => e[0] === "connected").length === 2, 10_000, "the reconnect");
    assert.equal(tokens.length, 3);
    assert.equal((await c.request("whoami")).userId, "u1");
  });

  test("a complete relayed from another user changes nothing for the victim's request", async (t) => {
    const victim = client(t, dev.wsURL, { token: signHS256(secret, { sub: "victim", tenant_id: "shared" }) });
    const attacker = client(t, dev.wsURL, { token: signHS256(secret, { sub: "attacker", tenant_id: "shared" }) });
    await Promise.all([victim.connect(), attacker.connect()]);
    const inbox = [];
    victim.on("message", (m) => inbox.push(m));
    let rid;
    const progress = [];
    const result = victim.request("report", { seconds: 1 }, { onAck: (a) => { rid = a.requestId; }, onProgress: (p) => progress.push(p.percentage) });
    await until(() => rid !== undefined, 5000, "the victim's ack");
    // The attacker knows the victim's server id (say, from a shoulder);
    // its forged frames reach the victim only as relayed content.
    const forged = [
      { v: 1, type: "complete", request_id: rid, result: { forged: true } },
      { v: 1, type: "error", request_id: rid, code: "CANCELLED", message: "forged" },
      { v: 1, type: "progress", request_id: rid, percentage: 99, attempt: 9 },
    ];
    for (const f of forged) await attacker.request("broadcast", f);
    await until(() => inbox.length === forged.length, 5000, "the relayed copies");
    assert.deepEqual(inbox, forged);
    assert.deepEqual(await result, { steps: 10, seconds: 1 });
    assert.ok(!progress.includes(99), `forged progress reached onProgress: ${progress}`);
    assert.equal(progress.at(-1), 100);
  });

  test("request ids are keyed by the server: the same client id gives another user another id", async (t) => {
    const a = client(t, dev.wsURL, { token: signHS256(secret, { sub: "ua", tenant_id: "t" }) });
    const b = client(t, dev.wsURL, { token: signHS256(secret, { sub: "ub", tenant_id: "t" }) });
    const ids = [];
    await a.request("report", { seconds: 0.1 }, { id: "same", onAck: (x) => ids.push(x.requestId) });
    await b.request("report", { seconds: 0.1 }, { id: "same", onAck: (x) => ids.push(x.requestId) });
    assert.equal(ids.length, 2);
    assert.notEqual(ids[0], ids[1]);
    // Not the unkeyed hash of tenant, user and client id.
    const { createHash } = await import("node:crypto");
    const unkeyed = "r-" + createHash("sha256").update("t\0ua\0same\0").digest().subarray(0, 18).toString("base64url");
    assert.notEqual(ids[0], unkeyed);
  });

  test("a string token goes in the token query parameter", async (t) => {
    const c = client(t, dev.wsURL, { token: signHS256(secret, { sub: "u2", tenant_id: "t2" }) });
    assert.equal((await c.request("whoami")).userId, "u2");
  });

  test("without a token the upgrade is refused and the client keeps retrying with backoff", async (t) => {
    const c = client(t, dev.wsURL, { reconnect: { initialDelayMs: 20, maxDelayMs: 40, maxAttempts: 3 } });
    await assert.rejects(c.connect(), (e) => isStreamerError(e, "DISCONNECTED"));
    assert.equal(c.events.filter((e) => e[0] === "reconnecting").length, 3);
    assert.equal(c.state, "disconnected");
  });
});

describe("with a short idle timeout", () => {
  let dev;
  before(async () => { dev = await startDev(null, "--idle-timeout", "1500ms"); });
  after(async () => { assert.equal(await dev.stop(), 0); });

  test("pings keep an idle socket open past the idle timeout; without them the runtime closes it (1001) and the client reconnects", async (t) => {
    const pinging = client(t, dev.wsURL, { pingIntervalMs: 200 });
    const silent = client(t, dev.wsURL, { pingIntervalMs: 0 });
    await Promise.all([pinging.connect(), silent.connect()]);
    const closed = await once(silent, "disconnected");
    assert.equal(closed.code, 1001);
    await once(silent, "connected");
    assert.equal(pinging.events.filter((e) => e[0] === "disconnected").length, 0, "the pinging client was never closed");
    assert.ok(sent(pinging, "ping").length >= 5);
    assert.equal(await pinging.request("echo", "still here"), "still here");
  });
});
