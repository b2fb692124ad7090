// The dev console polls the runtime's state once a second. Its only writes
// are the management API's POST and DELETE, through the console's own
// endpoints (which call the real @connections API).
const $ = (id) => document.getElementById(id);
const time = (iso) => (iso ? new Date(iso).toISOString().slice(11, 23) : "");
const ago = (iso, now) => (iso ? `${Math.max(0, Math.round((new Date(now) - new Date(iso)) / 1000))} s ago` : "");

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  tr.appendChild(td);
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

function render(s) {
  $("totals").textContent = `opened ${s.totals.opened} · closed ${s.totals.closed} · routes ${s.totals.routes} · @connections ${s.totals.management}`;
  $("conn-count").textContent = s.open > s.connections.length ? `(${s.open}, the oldest ${s.connections.length} listed)` : `(${s.open})`;
  const focused = document.activeElement?.dataset?.id;
  fill("conns", s.connections, (tr, c) => {
    tr.dataset.id = c.connectionId;
    cell(tr, c.connectionId, "mono");
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
  fill("routes", s.routes.slice(0, 50), (tr, r) => {
    cell(tr, time(r.time));
    cell(tr, r.routeKey, "mono");
    cell(tr, r.connectionId, "mono");
    cell(tr, String(r.status), `s${String(r.status)[0]}`).title = r.error ?? "";
    cell(tr, r.latencyMs.toFixed(2));
    cell(tr, String(r.bytes));
  });
  fill("calls", s.management.slice(0, 50), (tr, c) => {
    cell(tr, time(c.time));
    cell(tr, c.method);
    cell(tr, c.connectionId, "mono");
    cell(tr, `${c.status}${c.errorType ? " " + c.errorType : ""}`, `s${String(c.status)[0]}`);
    cell(tr, c.latencyMs.toFixed(2));
    cell(tr, String(c.bytes));
  });
  fill("closed", s.closed.slice(0, 30), (tr, c) => {
    cell(tr, time(c.time));
    cell(tr, c.connectionId, "mono");
    cell(tr, String(c.code));
    cell(tr, c.reason);
  });
  document.body.dataset.connections = String(s.connections.length);
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
