// The dev console polls the runtime's state once a second. Its only writes
// are the management API's POST and DELETE, through the console's own
// endpoints (which call the real @connections API). A click on a route
// invocation or an @connections call fetches its detail (event, response,
// body: truncated, credentials redacted by the server); the connection
// filter narrows every list to one connection.
const $ = (id) => document.getElementById(id);
const time = (iso) => (iso ? new Date(iso).toISOString().slice(11, 23) : "");
const ago = (iso, now) => (iso ? `${Math.max(0, Math.round((new Date(now) - new Date(iso)) / 1000))} s ago` : "");

let filter = new URLSearchParams(location.search).get("connection") ?? "";
let selected = null; // { kind: "routes" | "calls", seq }
let last = null; // the last state, to re-render on a filter change

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

/** connCell shows a connection ID (cut with an ellipsis when narrow); a click filters by it. */
function connCell(tr, id) {
  const td = cell(tr, id, "mono conn");
  td.title = `${id} (click to show only this connection)`;
  td.onclick = (e) => { e.stopPropagation(); setFilter(id); };
  return td;
}

function fill(tableId, rows, build) {
  const tbody = $(tableId).querySelector("tbody");
  const fresh = document.createElement("tbody");
  for (const r of rows) {
    const tr = document.createElement("tr");
    build(tr, r);
    fresh.appendChild(tr);
  }
  tbody.replaceWith(fresh);
}

function setFilter(id) {
  filter = id;
  const url = new URL(location.href);
  if (id) url.searchParams.set("connection", id);
  else url.searchParams.delete("connection");
  history.replaceState(null, "", url);
  if (last) render(last);
}

$("filter").onchange = () => setFilter($("filter").value);

/** syncFilterOptions lists the open connections (and the filtered one, even once closed), rebuilding only on change. */
function syncFilterOptions(s) {
  const ids = s.connections.map((c) => c.connectionId);
  if (filter && !ids.includes(filter)) ids.push(filter);
  const sel = $("filter");
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join("\n") !== ids.join("\n")) {
    sel.replaceChildren(new Option("all", ""), ...ids.map((id) => new Option(id, id)));
  }
  sel.value = filter;
}

const drafts = new Map(); // connection id -> message being typed, kept across refreshes

async function manage(method, id, body) {
  const res = await fetch(`/_console/api/connections/${encodeURIComponent(id)}`, {
    method,
    headers: { "X-Streamer-Console": "1", "Content-Type": "application/octet-stream" },
    body,
  });
  const text = res.ok ? await res.json() : { status: res.status, errorType: await res.text() };
  $("manage-result").textContent = `${method === "POST" ? "post to" : "disconnect"} ${id}: ${text.status}${text.errorType ? " " + text.errorType : ""}`;
  refresh();
}

function selectable(tr, kind, seq) {
  tr.className = "pick";
  tr.tabIndex = 0;
  tr.dataset.seq = String(seq);
  if (selected && selected.kind === kind && selected.seq === seq) tr.classList.add("selected");
  tr.onclick = () => showDetail(kind, seq);
  tr.onkeydown = (e) => { if (e.key === "Enter") showDetail(kind, seq); };
}

const pretty = (text) => {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
};
const bodyText = (b) => (b.bytes === 0 ? "(empty)" : pretty(b.text) + (b.truncated ? `\n… (${b.bytes} bytes in all; the first ${b.text.length} shown)` : ""));

async function showDetail(kind, seq) {
  selected = { kind, seq };
  if (last) render(last);
  const res = await fetch(`/_console/api/${kind}/${seq}`, { cache: "no-store" });
  const box = $("detail");
  box.hidden = false;
  box.dataset.kind = kind;
  if (!res.ok) {
    $("detail-title").textContent = `#${seq}: ${await res.text()}`;
    $("detail-timing").textContent = "";
    $("detail-left").textContent = $("detail-right").textContent = "";
    return;
  }
  const d = await res.json();
  if (kind === "routes") {
    $("detail-title").textContent = `${d.routeKey} → ${d.status}`;
    $("detail-timing").textContent = `${time(d.time)} · ${d.latencyMs.toFixed(2)} ms · connection ${d.connectionId} · request ${d.requestId} · ${d.bytes} bytes in`;
    $("detail-left-title").textContent = "event (credentials redacted)";
    // The message is a string inside the event; parsed below it when it is JSON.
    let parsed = "";
    if (d.eventBody.bytes > 0 && !d.eventBody.truncated) {
      try { parsed = `\n\nbody, parsed:\n${JSON.stringify(JSON.parse(d.eventBody.text), null, 2)}`; } catch { /* not JSON */ }
    }
    $("detail-left").textContent = JSON.stringify(d.event, null, 2) + parsed;
    $("detail-right-title").textContent = "response";
    $("detail-right").textContent = `statusCode ${d.response.statusCode}\n` +
      (d.response.headers?.length ? d.response.headers.join("\n") + "\n" : "") +
      (d.error ? `error: ${d.error}\n` : "") + `body: ${bodyText(d.response.body)}`;
  } else {
    $("detail-title").textContent = `${d.method} @connections/${d.connectionId} → ${d.status}${d.errorType ? " " + d.errorType : ""}`;
    $("detail-timing").textContent = `${time(d.time)} · ${d.latencyMs.toFixed(2)} ms · ${d.bytes} bytes`;
    $("detail-left-title").textContent = d.method === "POST" ? "posted body (tokens redacted)" : "request";
    $("detail-left").textContent = d.method === "POST" ? bodyText(d.body) : `${d.method} /@connections/${d.connectionId}`;
    $("detail-right-title").textContent = "answer";
    $("detail-right").textContent = `HTTP ${d.status}${d.errorType ? `\nX-Amzn-Errortype: ${d.errorType}` : ""}`;
  }
  document.body.dataset.detail = `${kind}/${seq}`;
}

$("detail-close").onclick = () => {
  $("detail").hidden = true;
  selected = null;
  delete document.body.dataset.detail;
  if (last) render(last);
};

// limitsText shows what --quotas and --faults did, when either is on.
function limitsText(l) {
  if (!l) return "";
  let out = "";
  if (l.Quotas) out += ` · quotas: ${l.ThrottledConnections} upgrades and ${l.ThrottledRequests} calls throttled`;
  if (l.Faults) {
    const i = l.Injected;
    out += ` · faults: ${i.ServerErrors} 5xx, ${i.Gone} 410, ${i.Delayed} delayed, ${i.LostDisconnects} lost $disconnect, ${i.Dropped} dropped`;
  }
  return out;
}

function render(s) {
  last = s;
  const mine = (r) => !filter || r.connectionId === filter;
  $("totals").textContent = `opened ${s.totals.opened} · closed ${s.totals.closed} · routes ${s.totals.routes} · @connections ${s.totals.management}` + limitsText(s.limits);
  $("conn-count").textContent = s.open > s.connections.length ? `(${s.open}, the oldest ${s.connections.length} listed)` : `(${s.open})`;
  syncFilterOptions(s);
  const focused = document.activeElement?.dataset?.id;
  fill("conns", s.connections.filter(mine), (tr, c) => {
    tr.dataset.id = c.connectionId;
    connCell(tr, c.connectionId);
    cell(tr, c.userId ? `${c.userId} / ${c.tenantId}` : "");
    cell(tr, `${c.sourceIp} ${c.userAgent}`.trim(), "muted");
    cell(tr, time(c.connectedAt));
    cell(tr, ago(c.lastActiveAt, s.now));
    const td = cell(tr, "");
    const input = document.createElement("input");
    input.size = 22;
    input.className = "post-text";
    input.dataset.id = c.connectionId;
    input.value = drafts.get(c.connectionId) ?? '{"hello":"from the console"}';
    input.oninput = () => drafts.set(c.connectionId, input.value);
    const post = document.createElement("button");
    post.textContent = "Post";
    post.className = "post";
    post.onclick = () => manage("POST", c.connectionId, input.value);
    const del = document.createElement("button");
    del.textContent = "Disconnect";
    del.className = "disconnect";
    del.onclick = () => manage("DELETE", c.connectionId);
    td.append(input, " ", post, " ", del);
    if (focused === c.connectionId) queueMicrotask(() => input.focus());
  });
  fill("routes", s.routes.filter(mine).slice(0, 50), (tr, r) => {
    selectable(tr, "routes", r.seq);
    cell(tr, time(r.time));
    cell(tr, r.routeKey, "mono");
    connCell(tr, r.connectionId);
    cell(tr, String(r.status), `s${String(r.status)[0]}`).title = r.error ?? "";
    cell(tr, r.latencyMs.toFixed(2), "num");
    cell(tr, String(r.bytes), "num");
  });
  fill("calls", s.management.filter(mine).slice(0, 50), (tr, c) => {
    selectable(tr, "calls", c.seq);
    cell(tr, time(c.time));
    cell(tr, c.method);
    connCell(tr, c.connectionId);
    cell(tr, `${c.status}${c.errorType ? " " + c.errorType : ""}`, `s${String(c.status)[0]}`);
    cell(tr, c.latencyMs.toFixed(2), "num");
    cell(tr, String(c.bytes), "num");
  });
  fill("closed", s.closed.filter(mine).slice(0, 30), (tr, c) => {
    cell(tr, time(c.time));
    connCell(tr, c.connectionId);
    cell(tr, String(c.code));
    cell(tr, c.reason);
  });
  document.body.dataset.connections = String(s.connections.length);
  document.body.dataset.filter = filter;
}

async function refresh() {
  try {
    const res = await fetch("/_console/api/state", { cache: "no-store" });
    render(await res.json());
  } catch (err) {
    $("totals").textContent = `runtime unreachable: ${err}`;
  }
}

refresh();
setInterval(refresh, 1000);
