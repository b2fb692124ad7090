// Channels through a real `streamer dev` (the issue-8 protocol): the demo's
// ticker, a chat room with client publish, presence and join/leave, and
// recovery with `since` after the runtime kills a subscriber's socket.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { StreamerClient, isStreamerError } from "../dist/index.js";
import { once, startDev, until } from "./dev.mjs";

function client(t, url, opts = {}) {
  const c = new StreamerClient(url, { reconnect: { initialDelayMs: 20, maxDelayMs: 50 }, ...opts });
  c.frames = [];
  c.on("frame", (f) => c.frames.push({ ...f, msg: JSON.parse(f.data) }));
  t.after(() => c.close());
  return c;
}
const sent = (c, type) => c.frames.filter((f) => f.direction === "out" && f.msg.type === type).map((f) => f.msg);

describe("channels", () => {
  let dev;
  before(async () => { dev = await startDev(); });
  after(async () => { assert.equal(await dev.stop(), 0); });

  test("the demo ticker publishes in offset order", async (t) => {
    const c = client(t, dev.wsURL);
    const got = [];
    const sub = c.subscribe("ticker", { onPublication: (p) => got.push(p) });
    const ctx = await sub.ready;
    assert.equal(ctx.channel, "ticker");
    assert.equal(typeof ctx.epoch, "string");
    await until(() => got.length >= 2, 5000, "two ticks");
    assert.equal(got[1].offset, got[0].offset + 1);
    assert.ok(got[0].offset > ctx.offset - 1);
    await sub.unsubscribe();
    const n = got.length;
    assert.equal(sub.active, false);
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(got.length, n, "nothing after unsubscribe");
  });

  test("chat: publish reaches every subscriber once; presence and join/leave", async (t) => {
    const a = client(t, dev.wsURL);
    const b = client(t, dev.wsURL);
    const room = `chat:room-${Date.now()}`;
    const gotA = [];
    const gotB = [];
    const joins = [];
    const leaves = [];
    const subA = a.subscribe(room, { onPublication: (p) => gotA.push(p), onJoin: (m) => joins.push(m), onLeave: (m) => leaves.push(m) });
    await subA.ready;
    const subB = b.subscribe(room, { onPublication: (p) => gotB.push(p) });
    await subB.ready;
    const whoB = await b.request("whoami");
    await until(() => joins.some((m) => m.connection_id === whoB.connectionId), 5000, "B's join seen by A");
    const members = await subA.presence();
    const whoA = await a.request("whoami");
    assert.deepEqual(members.map((m) => m.connection_id).sort(), [whoA.connectionId, whoB.connectionId].sort());
    await b.publish(room, { text: "one" });
    await a.publish(room, { text: "two" });
    await until(() => gotA.length === 2 && gotB.length === 2, 5000, "both publications on both");
    assert.deepEqual(gotA.map((p) => p.data.text), ["one", "two"]);
    assert.deepEqual(gotB.map((p) => p.offset), gotA.map((p) => p.offset));
    assert.equal(gotA[1].offset, gotA[0].offset + 1);
    await subB.unsubscribe();
    await until(() => leaves.some((m) => m.connection_id === whoB.connectionId), 5000, "B's leave seen by A");
    assert.equal((await subA.presence()).length, 1);
  });

  test("recovery: after the runtime kills the socket, the resubscribe with since delivers exactly what was missed", async (t) => {
    let hold = null;
    const a = client(t, dev.wsURL, { token: async () => { await hold?.promise; return ""; } });
    const b = client(t, dev.wsURL);
    const room = `chat:recover-${Date.now()}`;
    const got = [];
    const subscribed = [];
    const sub = a.subscribe(room, { onPublication: (p) => got.push(p), onSubscribed: (c) => subscribed.push(c) });
    await sub.ready;
    await b.publish(room, { n: 0 });
    await until(() => got.length === 1, 5000, "the first publication");
    const id = (await a.request("whoami")).connectionId;

    // Hold A's reconnect (its token function waits) while B publishes.
    hold = Promise.withResolvers ? Promise.withResolvers() : (() => { let r; const p = new Promise((res) => (r = res)); return { promise: p, resolve: r }; })();
    const down = once(a, "disconnected");
    assert.equal(await dev.disconnect(id), 204);
    await down;
    for (let i = 1; i <= 5; i++) await b.publish(room, { n: i });
    hold.resolve();
    await until(() => subscribed.length === 2, 10_000, "the resubscribe");
    const since = sent(a, "subscribe").at(-1).since;
    assert.deepEqual(since, { offset: got[0].offset, epoch: got[0].epoch });
    assert.equal(subscribed[1].wasRecovering, true);
    assert.equal(subscribed[1].recovered, true);
    await until(() => got.length === 6, 5000, "the five missed");
    assert.deepEqual(got.map((p) => p.data.n), [0, 1, 2, 3, 4, 5]);
    for (let i = 1; i < got.length; i++) assert.equal(got[i].offset, got[i - 1].offset + 1);
    await b.publish(room, { n: 6 });
    await until(() => got.length === 7, 5000, "live again");
    assert.equal(got.at(-1).data.n, 6);
  });

  test("a batch frame is unpacked: its publications and joins arrive as if sent one by one", async (t) => {
    const a = client(t, dev.wsURL);
    const room = `chat:batch-${Date.now()}`;
    const got = [];
    const joins = [];
    const sub = a.subscribe(room, { onPublication: (p) => got.push(p), onJoin: (m) => joins.push(m) });
    const ctx = await sub.ready;
    const id = (await a.request("whoami")).connectionId;
    const pub = (n) => ({ v: 1, type: "publication", channel: room, offset: ctx.offset + n, epoch: ctx.epoch, data: { n } });
    const frame = { v: 1, type: "batch", messages: [pub(1), { v: 1, type: "join", channel: room, info: { user_id: "u9", connection_id: "c9" } }, pub(2), pub(3), pub(2)] };
    const res = await fetch(`${dev.endpoint}/@connections/${encodeURIComponent(id)}`, { method: "POST", body: JSON.stringify(frame) });
    assert.equal(res.status, 200);
    await until(() => got.length === 3 && joins.some((m) => m.connection_id === "c9"), 5000, "the batch's messages");
    assert.deepEqual(got.map((p) => p.data.n), [1, 2, 3]);
  });

  test("a burst of publications reaches the subscriber exactly once, in order", async (t) => {
    const a = client(t, dev.wsURL);
    const b = client(t, dev.wsURL);
    const room = `chat:burst-${Date.now()}`;
    const got = [];
    await a.subscribe(room, { onPublication: (p) => got.push(p.offset) }).ready;
    const n = 300;
    const acks = await Promise.all(Array.from({ length: n }, (_, i) => b.publish(room, { i })));
    const offsets = acks.map((p) => p.offset).sort((x, y) => x - y);
    await until(() => got.length >= n, 10000, "every publication");
    assert.deepEqual(got, offsets);
  });

  test("a bogus epoch is not recovered: recovered:false tells the app", async (t) => {
    const a = client(t, dev.wsURL);
    const room = `chat:epoch-${Date.now()}`;
    const subscribed = [];
    const sub = a.subscribe(room, { onPublication: () => {}, onSubscribed: (c) => subscribed.push(c), since: { offset: 3, epoch: "not-the-epoch" } });
    const ctx = await sub.ready.catch((e) => e);
    if (isStreamerError(ctx)) {
      // A server may refuse a bogus since outright; then the app learns it from the error.
      assert.ok(["INVALID_MESSAGE", "NOT_FOUND"].includes(ctx.code), ctx.code);
      return;
    }
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, false);
  });
});
