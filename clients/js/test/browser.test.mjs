// The demo page and the dev console in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core; nothing is downloaded).
// Screenshots go to test-results/ (gitignored).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { artifacts, signHS256, startDev } from "./dev.mjs";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shots = join(artifacts, "screenshots");

let dev;
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  dev = await startDev();
  browser = await chromium.launch({
    executablePath,
    headless: true,
    // This machine's network is closed: without these Chromium keeps
    // trying to reach Google's services.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  assert.equal(await dev?.stop(), 0);
});

/** openDemo opens the demo page in a new context (a new "tab" with its own storage) and waits for its connection. */
async function openDemo(query = "") {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  // A failed request (a refused /favicon.ico, say) is an error too.
  page.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  page.errors = errors;
  await page.goto(query ? `${dev.page}?${query}` : dev.page);
  await page.waitForFunction(() => document.body.dataset.state === "connected" && document.body.dataset.connectionId);
  page.connectionId = await page.evaluate(() => document.body.dataset.connectionId);
  return page;
}

/** guest is the chat name of an anonymous tab: from its connection ID. */
const guest = (id) => `guest-${id.replace(/[^A-Za-z0-9]/g, "").slice(0, 4)}`;

test("demo page: a report's bar reaches 100 % with the result, and one is cancelled", async () => {
  const page = await openDemo();
  // Connected: Connect waits for a disconnect instead of opening another.
  assert.equal(await page.isDisabled("#connect"), true);
  assert.equal(await page.isDisabled("#disconnect"), false);
  await page.fill("#report-seconds", "1");
  await page.click("#report-run");
  await page.waitForFunction(() => document.getElementById("report-status").textContent === "done", null, { timeout: 10_000 });
  assert.equal(await page.$eval("#report-bar", (el) => el.value), 100);
  assert.equal(await page.textContent("#report-pct"), "100%");
  assert.deepEqual(JSON.parse(await page.textContent("#report-result")), { steps: 10, seconds: 1 });
  await page.screenshot({ path: join(shots, "demo-report-done.png"), fullPage: true });

  await page.fill("#report-seconds", "10");
  await page.click("#report-run");
  await page.waitForFunction(() => Number(document.getElementById("report-bar").value) > 0);
  await page.click("#report-cancel");
  await page.waitForFunction(() => document.getElementById("report-status").textContent === "cancelled", null, { timeout: 5000 });
  const pct = await page.$eval("#report-bar", (el) => el.value);
  assert.ok(pct > 0 && pct < 100, `cancelled midway at ${pct}`);
  // The frame log shows the cancel going out and the server's answer.
  const log = await page.textContent("#frames");
  assert.match(log, /▶ \{"v":1,"type":"cancel","request_id":"r-/);
  await page.waitForFunction(() => /◀ .*"code":"CANCELLED"/.test(document.getElementById("frames").textContent));
  await page.screenshot({ path: join(shots, "demo-report-cancelled.png"), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("demo page: a complete relayed from another page changes nothing for the page's report", async () => {
  const victim = await openDemo();
  const attacker = await openDemo();
  await victim.fill("#report-seconds", "2");
  await victim.click("#report-run");
  await victim.waitForFunction(() => /"type":"ack".*"request_id":"r-/.test(document.getElementById("frames").textContent));
  const rid = (await victim.textContent("#frames")).match(/"type":"ack"[^◀▶]*?"request_id":"(r-[^"]+)"/)[1];
  await attacker.evaluate((rid) => window.streamerClient.request("broadcast", { type: "complete", request_id: rid, result: { forged: true } }), rid);
  await victim.waitForFunction(() => /"type":"relay"/.test(document.getElementById("frames").textContent));
  assert.notEqual(await victim.textContent("#report-status"), "done", "the forged complete ended the report");
  await victim.waitForFunction(() => document.getElementById("report-status").textContent === "done", null, { timeout: 15_000 });
  assert.deepEqual(JSON.parse(await victim.textContent("#report-result")), { steps: 20, seconds: 2 });
  assert.deepEqual(victim.errors, []);
  await victim.context().close();
  await attacker.context().close();
});

test("broadcast between two pages, the console lists both, and disconnecting one from the console makes it reconnect", async () => {
  const a = await openDemo();
  const b = await openDemo();
  assert.notEqual(a.connectionId, b.connectionId);

  await a.fill("#bc-text", "hello from page A");
  await a.click("#bc-send");
  await b.waitForFunction(() => document.getElementById("bc-inbox").textContent.includes("hello from page A"));
  // B can hold the copy before A holds the reply: wait for A's reply, then judge it.
  await a.waitForFunction(() => document.getElementById("bc-result").textContent !== "");
  assert.match(await a.textContent("#bc-result"), /delivered to \d+ of \d+/);
  await b.screenshot({ path: join(shots, "demo-broadcast-received.png"), fullPage: true });

  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const con = await ctx.newPage();
  await con.goto(dev.console);
  const row = (id) => `#conns tr[data-id="${id}"]`;
  await con.waitForSelector(row(a.connectionId));
  await con.waitForSelector(row(b.connectionId));
  // Identity from the app's connection store, and the route log.
  assert.match(await con.textContent(row(a.connectionId)), /anonymous \/ default/);
  await con.waitForFunction(() => document.querySelector("#routes").textContent.includes("$connect"));
  await con.screenshot({ path: join(shots, "console-two-connections.png"), fullPage: true });

  // Post through the real management API: page B sees the message.
  await con.fill(`${row(b.connectionId)} input.post-text`, '{"kind":"demo-broadcast","text":"from the console","from":"console"}');
  await con.click(`${row(b.connectionId)} button.post`);
  await b.waitForFunction(() => document.getElementById("bc-inbox").textContent.includes("from the console"));
  await con.waitForFunction(() => /: 200$/.test(document.getElementById("manage-result").textContent));

  // B follows the ticker, so its reconnect must recover what it missed.
  await b.click("#ticker-toggle");
  await b.waitForFunction(() => document.getElementById("ticker-status").textContent === "subscribed");
  await b.waitForFunction(() => document.getElementById("ticker-offset").textContent !== "–");

  // Disconnect B: the DELETE goes to @connections, B's client reconnects
  // with a new connection id, and the console shows the call.
  await con.click(`${row(b.connectionId)} button.disconnect`);
  await con.waitForFunction(() => /disconnect .*: 204$/.test(document.getElementById("manage-result").textContent));
  await b.waitForFunction((old) => document.body.dataset.connects === "2" && document.body.dataset.state === "connected" && document.body.dataset.connectionId !== old, b.connectionId, { timeout: 10_000 });
  const fresh = await b.evaluate(() => document.body.dataset.connectionId);
  assert.match(await b.textContent("#frames"), /disconnected: code 1000/);
  await b.waitForFunction(() => document.getElementById("ticker-status").textContent === "resubscribed, nothing missed");
  assert.match(await b.textContent("#frames"), /▶ \{"v":1,"type":"subscribe","channel":"ticker","since":\{"offset":\d+,"epoch":"[^"]+"\}/);
  await con.waitForSelector(row(fresh));
  await con.waitForFunction((old) => !document.querySelector(`#conns tr[data-id="${old}"]`), b.connectionId);
  assert.match(await con.textContent("#calls"), /DELETE/);
  assert.match(await con.textContent("#calls"), /204/);
  assert.match(await con.textContent("#closed"), new RegExp(b.connectionId.replace(/[+/=]/g, (c) => "\\" + c)));
  await con.screenshot({ path: join(shots, "console-after-disconnect.png"), fullPage: true });
  await b.screenshot({ path: join(shots, "demo-reconnected.png"), fullPage: true });
  assert.deepEqual([...a.errors, ...b.errors], []);
  await Promise.all([a.context().close(), b.context().close(), ctx.close()]);
});

test("demo page: the ticker ticks, and two pages chat with presence and join/leave", async () => {
  const a = await openDemo();
  const b = await openDemo();
  await a.click("#ticker-toggle");
  await a.waitForFunction(() => document.getElementById("ticker-status").textContent === "subscribed");
  const first = Number(await a.textContent("#ticker-offset").catch(() => "0")) || 0;
  await a.waitForFunction((o) => Number(document.getElementById("ticker-offset").textContent) > o + 1, first, { timeout: 5000 });
  assert.match(await a.textContent("#ticker-last"), /"n":\d+/);

  const room = `r${Date.now()}`;
  for (const p of [a, b]) await p.fill("#chat-room", room);
  await a.click("#chat-join");
  await a.waitForFunction(() => document.getElementById("chat-status").textContent.startsWith("in chat:"));
  await b.click("#chat-join");
  await b.waitForFunction(() => document.getElementById("chat-status").textContent.startsWith("in chat:"));
  // A sees B join and both in the presence list.
  await a.waitForFunction(() => /joined/.test(document.getElementById("chat-log").textContent));
  // Members by name (a guest name per anonymous tab), not by connection ID.
  const [ga, gb] = [guest(a.connectionId), guest(b.connectionId)];
  await a.waitForFunction((names) => names.every((n) => document.getElementById("chat-members").textContent.includes(n)) && document.getElementById("chat-members").textContent.startsWith("2:"), [ga, gb]);
  assert.ok(!(await a.textContent("#chat-members")).includes(a.connectionId), "members are not listed by connection ID");
  assert.equal(await a.textContent("#chat-me"), ga);
  assert.match(await a.textContent("#chat-log"), new RegExp(`→ ${gb} joined`));
  await b.fill("#chat-text", "hello room");
  await b.click("#chat-send");
  await a.waitForFunction((line) => document.getElementById("chat-log").textContent.includes(line), `${gb}: hello room`);
  await a.fill("#chat-text", "hi B");
  await a.click("#chat-send");
  // Newest last, on both pages.
  for (const p of [a, b]) {
    await p.waitForFunction((line) => document.querySelector("#chat-log li:last-child")?.textContent === line, `${ga}: hi B`);
    const lines = await p.$$eval("#chat-log li", (lis) => lis.map((li) => li.textContent));
    assert.ok(lines.indexOf(`${gb}: hello room`) < lines.indexOf(`${ga}: hi B`), `chat order: ${lines}`);
  }
  await a.screenshot({ path: join(shots, "demo-channels.png"), fullPage: true });
  await b.click("#chat-leave");
  await a.waitForFunction(() => /left/.test(document.getElementById("chat-log").textContent));
  await a.waitForFunction(() => document.getElementById("chat-members").textContent.startsWith("1:"));
  assert.deepEqual([...a.errors, ...b.errors], []);
  await Promise.all([a.context().close(), b.context().close()]);
});

test("demo page with auth on: the token field's JWT is sent as ?token= and names the user", async (t) => {
  const secret = "a-browser-test-secret-of-32-bytes-or-more";
  const dir = mkdtempSync(join(tmpdir(), "streamer-browser-"));
  writeFileSync(join(dir, "secret"), secret);
  const authDev = await startDev(t, "--jwt-algorithms", "HS256", "--jwt-hmac-secret-file", join(dir, "secret"));
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  // Without a token the upgrade is refused and the page keeps retrying.
  await page.goto(authDev.page);
  assert.match(await page.textContent("#auth-note"), /Auth is on/);
  await page.waitForFunction(() => /reconnecting/.test(document.getElementById("state").textContent));
  await page.fill("#token", signHS256(secret, { sub: "carol", tenant_id: "acme" }));
  await page.click("#connect");
  await page.waitForFunction(() => document.body.dataset.state === "connected" && document.body.dataset.connectionId);
  await page.click("#echo-send");
  await page.waitForFunction(() => document.getElementById("echo-result").textContent === '{"text":"hello"}');
  const who = await page.evaluate(() => window.streamerClient.request("whoami"));
  assert.equal(who.userId, "carol");
  assert.equal(who.tenantId, "acme");
  await page.screenshot({ path: join(shots, "demo-auth.png"), fullPage: true });
  await ctx.close();
});

test("console: a click shows a route invocation's event and response and an @connections call's body, tokens redacted, one connection at a time", async () => {
  const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJicm93c2VyIn0.c2lnbmF0dXJlLWZvci10aGUtdGVzdA";
  const a = await openDemo(`token=${token}`); // auth is off: the token is only carried
  const b = await openDemo();
  await a.fill("#echo-text", "detail please");
  await a.click("#echo-send");
  await a.waitForFunction(() => document.getElementById("echo-result").textContent.includes("detail please"));

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const con = await ctx.newPage();
  const errors = [];
  con.on("pageerror", (e) => errors.push(e));
  con.on("response", (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  await con.goto(dev.console);
  await con.waitForFunction((id) => [...document.querySelectorAll("#routes td.conn")].some((td) => td.textContent === id), b.connectionId);

  // Filter by A's connection: every listed invocation and call is A's.
  await con.selectOption("#filter", a.connectionId);
  await con.waitForFunction((id) => document.body.dataset.filter === id, a.connectionId);
  const listed = await con.$$eval("#routes td.conn, #calls td.conn, #conns td.conn", (tds) => tds.map((td) => td.textContent));
  assert.ok(listed.length >= 3 && listed.every((id) => id === a.connectionId), `filtered lists: ${listed}`);

  // At 1280 px the tables fit their cards: the ms and bytes columns included.
  for (const table of ["routes", "calls"]) {
    const fit = await con.$eval(`#${table}`, (t) => ({ table: t.getBoundingClientRect().right, card: t.closest("section").getBoundingClientRect().right }));
    assert.ok(fit.table <= fit.card, `#${table} spills out of its card at 1280 px: ${JSON.stringify(fit)}`);
  }

  // A's $connect: its event, with the token redacted.
  await con.click("#routes tr.pick td:text-is('$connect')");
  await con.waitForFunction(() => document.body.dataset.detail?.startsWith("routes/"));
  const connectEvent = await con.textContent("#detail-left");
  assert.match(connectEvent, /"queryStringParameters": \{\s*"token": "\[redacted\]"/);
  assert.ok(!connectEvent.includes(token), "the token is not shown");
  assert.match(await con.textContent("#detail-right"), /statusCode 200/);
  assert.match(await con.textContent("#detail-timing"), /\d+\.\d\d ms · connection /);

  // The echo: the message in the event, the answer posted back in the call.
  await con.click("#routes tr.pick td:text-is('$default')");
  await con.waitForFunction(() => document.getElementById("detail-left").textContent.includes("detail please"));
  assert.match(await con.textContent("#detail-title"), /\$default → 200/);
  assert.match(await con.textContent("#detail-left"), /body, parsed:\n\{\n  "v": 1,\n  "type": "request"/);
  await con.screenshot({ path: join(shots, "console-detail-1280.png"), fullPage: true });

  await con.click("#calls tr.pick td:text-is('POST')");
  await con.waitForFunction(() => document.body.dataset.detail?.startsWith("calls/"));
  assert.match(await con.textContent("#detail-title"), /POST @connections\/.* → 200/);
  assert.match(await con.textContent("#detail-left"), /"type": "response"/);
  assert.match(await con.textContent("#detail-right"), /HTTP 200/);

  // A phone's width: one column, the detail still readable.
  await con.setViewportSize({ width: 420, height: 900 });
  await con.click("#routes tr.pick td:text-is('$default')");
  await con.waitForFunction(() => document.getElementById("detail-left").textContent.includes("detail please"));
  const narrow = await con.$eval("#detail", (d) => ({ right: d.getBoundingClientRect().right, width: document.documentElement.clientWidth }));
  assert.ok(narrow.right <= narrow.width, `the detail overflows 420 px: ${JSON.stringify(narrow)}`);
  await con.screenshot({ path: join(shots, "console-detail-420.png"), fullPage: true });

  await con.click("#detail-close");
  await con.waitForFunction(() => document.getElementById("detail").hidden);
  assert.deepEqual([...errors, ...a.errors, ...b.errors], []);
  await Promise.all([a.context().close(), b.context().close(), ctx.close()]);
});
