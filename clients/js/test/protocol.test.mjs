// Client logic that needs exact server messages (channels against the
// issue-8 wire names, duplicates, attempts): a scripted WebSocket stands in
// for the server. Everything here is also exercised against the real
// `streamer dev` where the server supports it (client.test.mjs,
// channels.test.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamerClient, isStreamerError } from "../dist/index.js";
import { delayFor } from "../dist/backoff.js";
import { until } from "./dev.mjs";

/** scripted returns a WebSocket class whose sockets the test drives. */
function scripted() {
  const sockets = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
      queueMicrotask(() => { this.readyState = 1; this.onopen?.({}); });
    }
    send(data) { this.sent.push(JSON.parse(data)); }
    close(code = 1005, reason = "") { this.drop(code, reason); }
    /** server side */
    push(msg) { this.onmessage?.({ data: JSON.stringify({ v: 1, ...msg }) }); }
    drop(code = 1006, reason = "") {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
    last(type) { return this.sent.filter((m) => m.type === type).at(-1); }
  }
  return { FakeWS, sockets, current: () => sockets.at(-1) };
}

function newClient(t, server, opts = {}) {
  const c = new StreamerClient("ws://fake/dev", { WebSocket: server.FakeWS, reconnect: { initialDelayMs: 1, maxDelayMs: 2 }, pingIntervalMs: 0, ...opts });
  t.after(() => c.close());
  return c;
}

const pub = (channel, offset, epoch = "e1", data = { n: offset }) => ({ type: "publication", channel, offset, epoch, data, info: { user_id: "u" } });

test("subscribe: publications in offset order, duplicates dropped, live ones that overtake subscribed held back", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const got = [];
  const subscribed = [];
  const sub = c.subscribe("news", { onPublication: (p) => got.push(p.offset), onSubscribed: (x) => subscribed.push(x) });
  await until(() => server.current()?.last("subscribe"), 1000, "subscribe sent");
  const ws = server.current();
  const req = ws.last("subscribe");
  assert.equal(req.channel, "news");
  assert.equal(req.since, undefined);
  ws.push(pub("news", 6)); // overtakes the answer
  ws.push({ type: "subscribed", request_id: req.id, channel: "news", offset: 5, epoch: "e1", recovered: false, publications: [] });
  ws.push(pub("news", 6)); // duplicate
  ws.push(pub("news", 7));
  ws.push(pub("news", 5)); // old
  ws.push(pub("other", 8)); // not ours
  const ctx = await sub.ready;
  assert.deepEqual(got, [6, 7]);
  assert.equal(ctx.offset, 5);
  assert.equal(ctx.wasRecovering, false);
  assert.equal(sub.offset, 7);
  assert.equal(sub.epoch, "e1");
  assert.equal(subscribed.length, 1);
});

test("after a reconnect it resubscribes with since and delivers the recovered publications once", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const got = [];
  const subscribed = [];
  const sub = c.subscribe("news", { onPublication: (p) => got.push(`${p.epoch}:${p.offset}`), onSubscribed: (x) => subscribed.push(x) });
  await until(() => server.current()?.last("subscribe"));
  let ws = server.current();
  ws.push({ type: "subscribed", request_id: ws.last("subscribe").id, channel: "news", offset: 2, epoch: "e1", recovered: false, publications: [] });
  ws.push(pub("news", 3));
  await sub.ready;
  ws.drop(1006);
  await until(() => server.sockets.length === 2 && server.current().last("subscribe"), 1000, "resubscribe");
  ws = server.current();
  const re = ws.last("subscribe");
  assert.deepEqual(re.since, { offset: 3, epoch: "e1" });
  ws.push({ type: "subscribed", request_id: re.id, channel: "news", offset: 6, epoch: "e1", recovered: true, publications: [pub("news", 3), pub("news", 4), pub("news", 5), pub("news", 6)] });
  ws.push(pub("news", 6));
  ws.push(pub("news", 7));
  await until(() => subscribed.length === 2);
  assert.deepEqual(got, ["e1:3", "e1:4", "e1:5", "e1:6", "e1:7"]);
  assert.equal(subscribed[1].wasRecovering, true);
  assert.equal(subscribed[1].recovered, true);
  assert.equal(subscribed[1].resubscribed, true);

  // History lost (new epoch): recovered false tells the app; publications
  // of the new epoch flow again from the current offset.
  ws.drop(1006);
  await until(() => server.sockets.length === 3 && server.current().last("subscribe"));
  ws = server.current();
  assert.deepEqual(ws.last("subscribe").since, { offset: 7, epoch: "e1" });
  ws.push({ type: "subscribed", request_id: ws.last("subscribe").id, channel: "news", offset: 1, epoch: "e2", recovered: false, publications: [] });
  ws.push(pub("news", 2, "e2"));
  await until(() => subscribed.length === 3);
  assert.equal(subscribed[2].recovered, false);
  assert.equal(subscribed[2].wasRecovering, true);
  assert.deepEqual(got.slice(5), ["e2:2"]);
});

test("presence, join/leave, unsubscribe, a refused subscribe", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const joins = [];
  const leaves = [];
  const sub = c.subscribe("chat:lobby", { onPublication: () => {}, onJoin: (m) => joins.push(m), onLeave: (m) => leaves.push(m) });
  await until(() => server.current()?.last("subscribe"));
  const ws = server.current();
  ws.push({ type: "subscribed", request_id: ws.last("subscribe").id, channel: "chat:lobby", offset: 0, epoch: "e", recovered: false, publications: [] });
  await sub.ready;
  ws.push({ type: "join", channel: "chat:lobby", info: { user_id: "u2", connection_id: "c2" } });
  ws.push({ type: "leave", channel: "chat:lobby", user_id: "u3", connection_id: "c3" });
  assert.deepEqual(joins, [{ user_id: "u2", connection_id: "c2" }]);
  assert.deepEqual(leaves, [{ user_id: "u3", connection_id: "c3" }]);
  const pres = sub.presence();
  await until(() => ws.last("presence"));
  ws.push({ type: "presence", request_id: ws.last("presence").id, channel: "chat:lobby", members: [{ user_id: "u1", connection_id: "c1" }] });
  assert.deepEqual(await pres, [{ user_id: "u1", connection_id: "c1" }]);
  const un = sub.unsubscribe();
  const req = ws.last("unsubscribe");
  assert.equal(req.channel, "chat:lobby");
  ws.push({ type: "unsubscribed", request_id: req.id, channel: "chat:lobby" });
  await un;
  assert.equal(sub.active, false);
  assert.equal(c.subscription("chat:lobby"), undefined);

  const errs = [];
  const bad = c.subscribe("private", { onPublication: () => {}, onError: (e) => errs.push(e) });
  await until(() => ws.last("subscribe")?.channel === "private");
  ws.push({ type: "error", request_id: ws.last("subscribe").id, code: "FORBIDDEN", message: "no" });
  await assert.rejects(bad.ready, (e) => isStreamerError(e, "FORBIDDEN"));
  assert.equal(errs[0].code, "FORBIDDEN");
  assert.equal(bad.active, false);
});

// API Gateway may handle one connection's messages in any order: a
// subscribe and an unsubscribe of one channel sent together could be
// handled the other way round, so each waits for the other's answer.
test("unsubscribe waits for the subscribe in flight, and a new subscribe for the unsubscribe", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const sub = c.subscribe("news", { onPublication: () => {} });
  await until(() => server.current()?.last("subscribe"));
  const ws = server.current();
  const un = sub.unsubscribe();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(ws.last("unsubscribe"), undefined, "unsubscribe sent before the subscribe was answered");
  ws.push({ type: "subscribed", request_id: ws.last("subscribe").id, channel: "news", offset: 0, epoch: "e", recovered: false, publications: [] });
  await until(() => ws.last("unsubscribe"), 1000, "unsubscribe after the subscribed answer");

  // Subscribing again while that unsubscribe is in flight.
  const again = c.subscribe("news", { onPublication: () => {} });
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(ws.sent.filter((m) => m.type === "subscribe").length, 1, "subscribe sent before the unsubscribe was answered");
  ws.push({ type: "unsubscribed", request_id: ws.last("unsubscribe").id, channel: "news" });
  await un;
  await until(() => ws.sent.filter((m) => m.type === "subscribe").length === 2, 1000, "subscribe after the unsubscribed answer");
  ws.push({ type: "subscribed", request_id: ws.last("subscribe").id, channel: "news", offset: 0, epoch: "e", recovered: false, publications: [] });
  await again.ready;
  assert.equal(again.active, true);
  assert.equal(c.subscription("news"), again);
});

test("ack and progress expose attempt; a retry's progress starts over, a resume's repeat is dropped", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const progress = [];
  const acks = [];
  const p = c.request("job", {}, { onAck: (a) => acks.push(a), onProgress: (x) => progress.push(`${x.attempt}:${x.percentage}`) });
  await until(() => server.current()?.last("request"));
  const ws = server.current();
  const id = ws.last("request").id;
  ws.push({ type: "ack", id, request_id: "r-1", action: "job", attempt: 1 });
  ws.push({ type: "progress", request_id: "r-1", percentage: 50, attempt: 1 });
  ws.push({ type: "progress", request_id: "r-1", percentage: 50, attempt: 1 }); // a resume's repeat
  ws.push({ type: "progress", request_id: "r-1", percentage: 10, attempt: 2 }); // the retry starts over
  ws.push({ type: "progress", request_id: "r-1", percentage: 60, attempt: 1 }); // late, of the first run
  ws.push({ type: "progress", request_id: "r-1", percentage: 100, attempt: 2 });
  ws.push({ type: "progress", request_id: "r-1", percentage: 100, attempt: 2 });
  ws.push({ type: "complete", request_id: "r-1", result: "ok" });
  assert.equal(await p, "ok");
  assert.deepEqual(acks, [{ requestId: "r-1", id, action: "job", attempt: 1 }]);
  assert.deepEqual(progress, ["1:50", "2:10", "2:100"]);
});

test("a request aborted before its ack is cancelled once the ack names it", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const ac = new AbortController();
  const p = c.request("job", {}, { signal: ac.signal });
  await until(() => server.current()?.last("request"));
  ac.abort();
  await assert.rejects(p, (e) => isStreamerError(e, "CANCELLED"));
  const ws = server.current();
  assert.equal(ws.last("cancel"), undefined);
  ws.push({ type: "ack", id: ws.last("request").id, request_id: "r-9" });
  assert.deepEqual(ws.last("cancel"), { v: 1, type: "cancel", request_id: "r-9" });
});

test("a silent socket is dropped after the pong timeout and replaced", async (t) => {
  const server = scripted();
  const c = newClient(t, server, { pingIntervalMs: 20, pongTimeoutMs: 30 });
  const disc = [];
  c.on("disconnected", (e) => disc.push(e));
  await c.connect();
  await until(() => disc.length === 1, 2000, "the pong timeout");
  assert.equal(disc[0].code, 4000);
  assert.equal(disc[0].reason, "no pong");
  await until(() => server.sockets.length === 2 && c.state === "connected");
});

test("full-jitter backoff stays under the cap and grows per attempt", () => {
  const b = { initialDelayMs: 100, maxDelayMs: 1000, maxAttempts: Infinity };
  assert.equal(delayFor(b, 1, () => 0.999), 99);
  assert.equal(delayFor(b, 3, () => 0.999), 399);
  assert.equal(delayFor(b, 50, () => 0.999), 999);
  assert.equal(delayFor(b, 5, () => 0), 0);
});

test("constructor refuses bad input with clear errors", () => {
  assert.throws(() => new StreamerClient("http://x"), TypeError);
  assert.throws(() => new StreamerClient("ws://x", { pingIntervalMs: -1 }), RangeError);
  assert.throws(() => new StreamerClient("ws://x", { reconnect: { initialDelayMs: 10, maxDelayMs: 5 } }), RangeError);
});

test("after reconnecting gave up, a new request opens the socket again", async (t) => {
  const server = scripted();
  const c = newClient(t, server, { reconnect: false });
  await c.connect();
  server.current().drop(1006);
  assert.equal(c.state, "disconnected");
  const p = c.request("echo", 1);
  await until(() => server.sockets.length === 2 && server.current().last("request"));
  const ws = server.current();
  ws.push({ type: "response", request_id: ws.last("request").id, data: 1 });
  assert.equal(await p, 1);
  assert.equal(c.state, "connected");
});

test("a reply of a type the client does not know answers its call; other unknown messages are message events", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const messages = [];
  c.on("message", (m) => messages.push(m));
  await c.connect();
  const ws = server.current();
  const p = c.publish("chat:x", { text: "hi" });
  const req = ws.last("publish");
  assert.deepEqual({ channel: req.channel, data: req.data }, { channel: "chat:x", data: { text: "hi" } });
  ws.push({ type: "published", request_id: req.id, offset: 4 });
  assert.equal((await p).offset, 4);
  const p2 = c.publish("chat:x", 1);
  ws.push({ type: "response", request_id: ws.last("publish").id, data: { channel: "chat:x", offset: 5, epoch: "e" } });
  assert.deepEqual(await p2, { channel: "chat:x", offset: 5, epoch: "e" });
  ws.push({ type: "news", text: "x" });
  ws.onmessage({ data: "not json" });
  assert.deepEqual(messages, [{ v: 1, type: "news", text: "x" }, "not json"]);
});

/** subscribed subscribes c to channel on the scripted server at offset. */
async function subscribedAt(server, c, channel, offset, opts = {}) {
  const got = [];
  const sub = c.subscribe(channel, { onPublication: (p) => got.push(p.offset), ...opts });
  await until(() => server.current()?.last("subscribe"));
  const ws = server.current();
  ws.push({ type: "subscribed", request_id: ws.last("subscribe").id, channel, offset, epoch: "e1", recovered: false, publications: [] });
  await sub.ready;
  return { sub, got, ws };
}

test("publications out of order (concurrent publishers) are reordered; nothing is asked of history", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const { got, ws } = await subscribedAt(server, c, "news", 1, { gapWaitMs: 200 });
  ws.push(pub("news", 3));
  ws.push(pub("news", 4));
  assert.deepEqual(got, []);
  ws.push(pub("news", 2));
  assert.deepEqual(got, [2, 3, 4]);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(ws.sent.filter((m) => m.type === "subscribe").length, 1, "no resubscribe");
});

test("a publish refused OVERLOADED rejects with retryAfterMs from the error's retry_after_ms", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  await c.connect();
  const ws = server.current();
  const p = c.publish("chat:x", 1);
  ws.push({ type: "error", request_id: ws.last("publish").id, code: "OVERLOADED", message: "behind", retry_after_ms: 250 });
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(isStreamerError(err, "OVERLOADED"), String(err));
  assert.equal(err.retryAfterMs, 250);
  const p2 = c.publish("chat:x", 2);
  ws.push({ type: "error", request_id: ws.last("publish").id, code: "FORBIDDEN", message: "no" });
  const err2 = await p2.then(() => undefined, (e) => e);
  assert.equal(err2.code, "FORBIDDEN");
  assert.equal(err2.retryAfterMs, undefined);
});

test("a gap that stays open is fetched from history with since, then delivered in order", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const { sub, got, ws } = await subscribedAt(server, c, "news", 1, { gapWaitMs: 30 });
  ws.push(pub("news", 2));
  ws.push(pub("news", 5));
  await until(() => ws.sent.filter((m) => m.type === "subscribe").length === 2, 2000, "the gap resubscribe");
  const re = ws.last("subscribe");
  assert.deepEqual(re.since, { offset: 2, epoch: "e1" });
  ws.push({ type: "subscribed", request_id: re.id, channel: "news", offset: 5, epoch: "e1", recovered: true, publications: [pub("news", 3), pub("news", 4), pub("news", 5)] });
  await until(() => got.length === 4);
  assert.deepEqual(got, [2, 3, 4, 5]);
  ws.push(pub("news", 6));
  assert.deepEqual(got, [2, 3, 4, 5, 6]);
  assert.equal(sub.active, true);
});

test("a recovered answer that skips an offset (its publication was never stored) is delivered whole; no resubscribe, no gap", async (t) => {
  const server = scripted();
  const warnings = [];
  const c = newClient(t, server, { logger: { warn: (...a) => warnings.push(a) } });
  const { sub, got, ws } = await subscribedAt(server, c, "news", 1, { gapWaitMs: 30 });
  ws.push(pub("news", 4));
  await until(() => ws.sent.filter((m) => m.type === "subscribe").length === 2, 2000, "the gap resubscribe");
  const re = ws.last("subscribe");
  assert.deepEqual(re.since, { offset: 1, epoch: "e1" });
  ws.push({ type: "subscribed", request_id: re.id, channel: "news", offset: 4, epoch: "e1", recovered: true, publications: [pub("news", 3), pub("news", 4)] });
  await until(() => got.length === 2);
  assert.deepEqual(got, [3, 4]);
  ws.push(pub("news", 5));
  assert.deepEqual(got, [3, 4, 5]);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ws.sent.filter((m) => m.type === "subscribe").length, 2, "no further resubscribe");
  assert.deepEqual(got, [3, 4, 5]);
  assert.equal(sub.active, true);
  assert.deepEqual(warnings.filter((w) => String(w[0]).includes("gap")), []);
});

test("when the server cannot fill a gap, what waited is delivered and the subscription stays", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const { sub, got, ws } = await subscribedAt(server, c, "news", 1, { gapWaitMs: 30 });
  ws.push(pub("news", 4));
  await until(() => ws.sent.filter((m) => m.type === "subscribe").length === 2);
  ws.push({ type: "error", request_id: ws.last("subscribe").id, code: "INVALID_MESSAGE", message: "already subscribed" });
  await until(() => got.length === 1);
  assert.deepEqual(got, [4]);
  assert.equal(sub.active, true);
  ws.push(pub("news", 5));
  assert.deepEqual(got, [4, 5]);
});

test("a live publication of another epoch resubscribes with since, and onSubscribed reports recovered:false", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const subscribed = [];
  const { got, ws } = await subscribedAt(server, c, "news", 3, { onSubscribed: (x) => subscribed.push(x) });
  ws.push(pub("news", 1, "e2"));
  const re = ws.last("subscribe");
  assert.deepEqual(re.since, { offset: 3, epoch: "e1" });
  ws.push({ type: "subscribed", request_id: re.id, channel: "news", offset: 1, epoch: "e2", recovered: false, publications: [] });
  await until(() => subscribed.length === 2);
  assert.equal(subscribed[1].recovered, false);
  assert.equal(subscribed[1].epoch, "e2");
  ws.push(pub("news", 2, "e2"));
  assert.deepEqual(got, [2]);
});

test("a request the server never acknowledged is sent again with the same id after a reconnect; an acked one is resumed", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const p1 = c.request("job", { a: 1 });
  const p2 = c.request("job", { b: 2 });
  await until(() => server.current()?.sent.filter((m) => m.type === "request").length === 2);
  let ws = server.current();
  const [r1, r2] = ws.sent.filter((m) => m.type === "request");
  ws.push({ type: "ack", id: r2.id, request_id: "r-2" });
  ws.drop(1006);
  await until(() => server.sockets.length === 2 && server.current().sent.length >= 2);
  ws = server.current();
  assert.deepEqual(ws.sent.filter((m) => m.type === "request").map((m) => [m.id, m.payload]), [[r1.id, { a: 1 }]]);
  assert.deepEqual(ws.last("resume"), { v: 1, type: "resume", request_id: "r-2" });
  ws.push({ type: "ack", id: r1.id, request_id: "r-1" });
  ws.push({ type: "complete", request_id: "r-1", result: 1 });
  ws.push({ type: "complete", request_id: "r-2", result: 2 });
  assert.deepEqual(await Promise.all([p1, p2]), [1, 2]);
});

test("frames about requests the client did not send change nothing", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const messages = [];
  c.on("message", (m) => messages.push(m));
  let settled = false;
  const p = c.request("work", { n: 1 }, { id: "mine" });
  p.then(() => { settled = true; }, () => { settled = true; });
  await until(() => server.current()?.last("request"), 1000, "request sent");
  const ws = server.current();
  // Replies for ids this client never sent, a relayed frame, and an ack
  // that would move "mine" to another server id after its own ack.
  ws.push({ type: "response", request_id: "not-mine", data: 1 });
  ws.push({ type: "complete", request_id: "r-other", result: 1 });
  ws.push({ type: "relay", data: { type: "response", request_id: "mine", data: "forged" } });
  ws.push({ type: "ack", id: "mine", request_id: "r-mine", action: "work", attempt: 1 });
  ws.push({ type: "ack", id: "mine", request_id: "r-evil", action: "work", attempt: 1 });
  ws.push({ type: "complete", request_id: "r-evil", result: "forged" });
  ws.push({ type: "error", request_id: "mine", code: "CANCELLED", message: "by client id after the ack" });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false, "settled by a frame about another request");
  assert.deepEqual(messages, [{ type: "response", request_id: "mine", data: "forged" }]);
  ws.push({ type: "complete", request_id: "r-mine", result: "real" });
  assert.equal(await p, "real");
});

test("attempts are ordered: an older attempt's progress is dropped, and nothing after the outcome", async (t) => {
  const server = scripted();
  const c = newClient(t, server);
  const progress = [];
  const p = c.request("work", null, { id: "w", onProgress: (x) => progress.push([x.attempt, x.percentage]) });
  await until(() => server.current()?.last("request"), 1000, "request sent");
  const ws = server.current();
  ws.push({ type: "ack", id: "w", request_id: "r-w", attempt: 1 });
  ws.push({ type: "progress", request_id: "r-w", percentage: 40, attempt: 1 });
  ws.push({ type: "progress", request_id: "r-w", percentage: 5, attempt: 2 });
  ws.push({ type: "progress", request_id: "r-w", percentage: 45, attempt: 1 }); // the old run, late
  ws.push({ type: "progress", request_id: "r-w", percentage: 10, attempt: 2 });
  ws.push({ type: "complete", request_id: "r-w", result: "ok" });
  ws.push({ type: "progress", request_id: "r-w", percentage: 50, attempt: 1 }); // after the outcome
  assert.equal(await p, "ok");
  assert.deepEqual(progress, [[1, 40], [2, 5], [2, 10]]);
});
