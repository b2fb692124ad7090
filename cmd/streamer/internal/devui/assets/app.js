// The demo page: every button is one call of the TypeScript client
// (/_ui/client/index.js, the build of clients/js embedded in the binary).
import { StreamerClient, isStreamerError } from "/_ui/client/index.js";

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
const stage = meta("streamer-stage") || "dev";
const scheme = location.protocol === "https:" ? "wss:" : "ws:";
const wsURL = `${scheme}//${location.host}/${stage}`;
const params = new URLSearchParams(location.search);

$("url").textContent = wsURL;
$("auth-note").textContent = meta("streamer-auth") === "on"
  ? "Auth is on: paste a JWT, then Connect (it is sent as ?token=)."
  : "Auth is off: every tab is user \"anonymous\".";
if (params.get("token")) $("token").value = params.get("token");

let client = null;

function logLine(cls, text) {
  const el = $("frames");
  const line = document.createElement("div");
  line.className = cls;
  line.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  el.appendChild(line);
  while (el.childNodes.length > 500) el.removeChild(el.firstChild);
  el.scrollTop = el.scrollHeight;
}

function setState(s, extra = "") {
  const el = $("state");
  el.textContent = extra ? `${s} ${extra}` : s;
  el.className = `pill ${s}`;
  document.body.dataset.state = s;
  // Connected: Connect would only replace this connection, so it waits
  // for a disconnect. While (re)connecting it stays available, to retry
  // at once with the token now in the field.
  $("connect").disabled = s === "connected";
  $("disconnect").disabled = s === "closed" || s === "idle";
}

function connect() {
  if (client) client.close();
  const token = $("token").value.trim();
  client = new StreamerClient(wsURL, {
    token: token ? () => $("token").value.trim() : undefined,
    reconnect: { initialDelayMs: 300, maxDelayMs: 5000 },
    logger: console,
  });
  window.streamerClient = client;
  client.on("frame", (f) => logLine(f.direction, `${f.direction === "out" ? "▶" : "◀"} ${f.data}`));
  client.on("connecting", (e) => { setState("connecting"); logLine("ev", `connecting (attempt ${e.attempt})`); });
  client.on("reconnecting", (e) => { setState("reconnecting", `#${e.attempt}`); logLine("ev", `reconnecting: attempt ${e.attempt} in ${e.delayMs} ms`); });
  client.on("disconnected", (e) => { logLine("ev", `disconnected: code ${e.code} ${e.reason || ""}`); $("conn-id").textContent = "–"; });
  client.on("closed", () => setState("closed"));
  client.on("connected", async () => {
    setState("connected");
    logLine("ev", "connected");
    document.body.dataset.connects = String(Number(document.body.dataset.connects ?? 0) + 1);
    try {
      const me = await client.request("whoami");
      $("conn-id").textContent = me.connectionId;
      document.body.dataset.connectionId = me.connectionId;
      myName = displayName(me.userId, me.connectionId);
      $("chat-me").textContent = myName;
    } catch (err) {
      logLine("ev", `whoami failed: ${err.code ?? err}`);
    }
  });
  client.on("message", (m) => {
    if (m && typeof m === "object" && m.kind === "demo-broadcast") {
      const li = document.createElement("li");
      li.textContent = `${m.from ?? "?"}: ${m.text}`;
      $("bc-inbox").prepend(li);
    }
  });
  client.on("error", (e) => logLine("ev", `error: ${e.error?.code ?? ""} ${e.error?.message ?? e.error}`));
  client.connect().catch((err) => logLine("ev", `connect failed: ${err.message}`));
  resetChannels();
}

$("connect").onclick = connect;
$("disconnect").onclick = () => { client?.close(); };
$("frames-clear").onclick = () => { $("frames").textContent = ""; };

// Echo.
$("echo-send").onclick = async () => {
  try {
    const data = await client.request("echo", { text: $("echo-text").value });
    $("echo-result").textContent = JSON.stringify(data);
  } catch (err) {
    $("echo-result").textContent = `error ${err.code}: ${err.message}`;
  }
};

// Report: progress bar and cancel through an AbortController.
let reportAbort = null;
$("report-run").onclick = async () => {
  reportAbort = new AbortController();
  $("report-run").disabled = true;
  $("report-cancel").disabled = false;
  $("report-bar").value = 0;
  $("report-pct").textContent = "0%";
  $("report-msg").textContent = "";
  $("report-result").textContent = "";
  $("report-status").textContent = "running";
  try {
    const result = await client.request("report", { seconds: Number($("report-seconds").value) }, {
      signal: reportAbort.signal,
      onAck: (a) => { $("report-status").textContent = `queued as ${a.requestId}`; },
      onProgress: (p) => {
        $("report-bar").value = p.percentage;
        $("report-pct").textContent = `${Math.round(p.percentage)}%`;
        $("report-msg").textContent = (p.message ?? "") + (p.attempt > 1 ? ` (attempt ${p.attempt})` : "");
      },
    });
    $("report-status").textContent = "done";
    $("report-result").textContent = JSON.stringify(result);
  } catch (err) {
    $("report-status").textContent = isStreamerError(err, "CANCELLED") ? "cancelled" : `error ${err.code}`;
    $("report-result").textContent = err.message;
  } finally {
    $("report-run").disabled = false;
    $("report-cancel").disabled = true;
  }
};
$("report-cancel").onclick = () => reportAbort?.abort();

// Broadcast: the demo action posts the payload to every connection of the
// tenant; other tabs see it through the client's "message" event.
$("bc-send").onclick = async () => {
  try {
    const r = await client.request("broadcast", { kind: "demo-broadcast", text: $("bc-text").value, from: $("conn-id").textContent });
    $("bc-result").textContent = `delivered to ${r.delivered} of ${r.recipients} connections`;
  } catch (err) {
    $("bc-result").textContent = `error ${err.code}: ${err.message}`;
  }
};

// Channels: the ticker the server publishes to every second, and chat rooms.
let ticker = null;
let chat = null;

function resetChannels() {
  ticker = null;
  chat = null;
  $("ticker-toggle").textContent = "Subscribe";
  $("ticker-status").textContent = "";
  $("chat-join").disabled = false;
  $("chat-leave").disabled = true;
  $("chat-send").disabled = true;
  $("chat-members").textContent = "–";
}

function channelError(el, err) {
  el.textContent = isStreamerError(err, "INVALID_MESSAGE") || isStreamerError(err, "UNKNOWN_ACTION")
    ? `channels are not available on this server (${err.code})`
    : `error ${err.code ?? ""}: ${err.message}`;
}

$("ticker-toggle").onclick = async () => {
  if (ticker) {
    const t = ticker;
    ticker = null;
    $("ticker-toggle").textContent = "Subscribe";
    $("ticker-status").textContent = "";
    await t.unsubscribe().catch(() => {});
    return;
  }
  ticker = client.subscribe("ticker", {
    onPublication: (p) => {
      $("ticker-last").textContent = JSON.stringify(p.data);
      $("ticker-offset").textContent = String(p.offset);
    },
    onSubscribed: (c) => {
      $("ticker-status").textContent = c.wasRecovering ? (c.recovered ? "resubscribed, nothing missed" : "resubscribed, some ticks were lost") : "subscribed";
    },
    onError: (err) => channelError($("ticker-status"), err),
  });
  $("ticker-toggle").textContent = "Unsubscribe";
  ticker.ready.catch((err) => { ticker = null; $("ticker-toggle").textContent = "Subscribe"; channelError($("ticker-status"), err); });
};

// Chat names: a signed-in user's ID; with auth off every tab is user
// "anonymous", so a tab goes by a guest name made from its connection ID,
// the same on every page (presence and join/leave carry the connection ID;
// a tab's own publications carry its name in their data).
let myName = "";
const displayName = (userId, connectionId) =>
  userId && userId !== "anonymous" ? userId : `guest-${(connectionId ?? "????").replace(/[^A-Za-z0-9]/g, "").slice(0, 4)}`;

async function refreshMembers() {
  if (!chat) return;
  try {
    const members = await chat.presence();
    const names = [...new Set(members.map((m) => displayName(m.user_id, m.connection_id)))].sort();
    $("chat-members").textContent = `${members.length}: ${names.join(", ")}`;
  } catch (err) {
    $("chat-members").textContent = `presence failed: ${err.code ?? err}`;
  }
}

// chatLine adds a line at the bottom, newest last, and keeps it in view.
function chatLine(text) {
  const log = $("chat-log");
  const li = document.createElement("li");
  li.textContent = text;
  log.append(li);
  while (log.childNodes.length > 200) log.removeChild(log.firstChild);
  log.scrollTop = log.scrollHeight;
}

$("chat-join").onclick = () => {
  const channel = `chat:${$("chat-room").value.trim() || "lobby"}`;
  chat = client.subscribe(channel, {
    onPublication: (p) => chatLine(`${p.data?.name ?? p.info?.user_id ?? "?"}: ${p.data?.text ?? JSON.stringify(p.data)}`),
    onJoin: (m) => { chatLine(`→ ${displayName(m.user_id, m.connection_id)} joined`); refreshMembers(); },
    onLeave: (m) => { chatLine(`← ${displayName(m.user_id, m.connection_id)} left`); refreshMembers(); },
    onSubscribed: (c) => {
      $("chat-status").textContent = `in ${channel}` + (c.wasRecovering && !c.recovered ? " (some messages were lost)" : "");
      refreshMembers();
    },
    onError: (err) => channelError($("chat-status"), err),
  });
  $("chat-join").disabled = true;
  $("chat-leave").disabled = false;
  $("chat-send").disabled = false;
  chat.ready.catch((err) => {
    chat = null;
    $("chat-join").disabled = false;
    $("chat-leave").disabled = true;
    $("chat-send").disabled = true;
    channelError($("chat-status"), err);
  });
};

$("chat-leave").onclick = async () => {
  const c = chat;
  chat = null;
  $("chat-join").disabled = false;
  $("chat-leave").disabled = true;
  $("chat-send").disabled = true;
  $("chat-status").textContent = "";
  $("chat-members").textContent = "–";
  await c?.unsubscribe().catch(() => {});
};

$("chat-send").onclick = async () => {
  if (!chat) return;
  const text = $("chat-text").value;
  if (!text) return;
  try {
    await client.publish(chat.channel, { text, name: myName });
    $("chat-text").value = "";
  } catch (err) {
    chatLine(`publish failed: ${err.code}: ${err.message}`);
  }
};

if (params.get("connect") !== "0") connect();
