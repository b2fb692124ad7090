// Streamer's Node.js runtime shim: the loop Lambda's nodejs runtimes run,
// speaking the Lambda Runtime API. It loads _HANDLER ("path/file.export")
// from LAMBDA_TASK_ROOT, CommonJS or ESM (.js, .mjs, .cjs), and supports
// async handlers and, before nodejs24.x, callback handlers (nodejs24.x
// refuses a handler that declares a callback, as Lambda does). When
// STREAMER_NODE_SDK names a node_modules folder, an @aws-sdk/* import the
// function does not ship resolves there, as Lambda's runtimes bundle the
// SDK (CommonJS finds it through NODE_PATH).
import net from "node:net";
import module from "node:module";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const apiHost = api.slice(0, api.lastIndexOf(":"));
const apiPort = Number(api.slice(api.lastIndexOf(":") + 1));
const base = "/2018-06-01/runtime";

// The Runtime API is called over one keep-alive socket with a small
// HTTP/1.1 client of its own: Lambda's runtime client uses a native one,
// and node:http's machinery (ClientRequest, Agent, streams) costs about as
// much CPU per invocation as a light handler. An answer asks for the next
// invocation in the same request (answerAndNext): each write wakes the
// runtime and each response wakes this process, and on a busy machine
// each wake-up can cost the function its CPU.
let conn = null; // { socket, queue: [{ resolve, reject }], buf }

function apiConn() {
  if (conn !== null) return conn;
  const c = { socket: net.connect({ host: apiHost, port: apiPort }), queue: [], buf: Buffer.alloc(0) };
  c.socket.setNoDelay(true);
  c.socket.on("data", (chunk) => {
    c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
    parse(c);
  });
  const gone = (err) => {
    if (conn === c) conn = null;
    for (const p of c.queue.splice(0)) p.reject(err || new Error("the Runtime API closed the connection"));
  };
  c.socket.on("error", gone);
  c.socket.on("close", () => gone());
  conn = c;
  return c;
}

// parse completes the requests of c, in order, whose whole responses c.buf
// holds (their length is always given).
function parse(c) {
  while (c.queue.length > 0) {
    const end = c.buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const lines = c.buf.toString("latin1", 0, end).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = {};
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(":");
      if (colon > 0) headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
    }
    if (headers["transfer-encoding"] !== undefined) {
      // The Runtime API (lambdart) sends every body with its length.
      c.socket.destroy(new Error("the Runtime API sent a body without Content-Length"));
      return;
    }
    const length = Number(headers["content-length"] || 0);
    if (c.buf.length < end + 4 + length) return;
    const body = Buffer.from(c.buf.subarray(end + 4, end + 4 + length));
    c.buf = c.buf.subarray(end + 4 + length);
    if (/close/i.test(headers.connection || "") && conn === c) {
      // The server closes this socket: later calls open another, and
      // requests already sent on it fail when it closes.
      conn = null;
    }
    c.queue.shift().resolve({ status, headers, body });
  }
}

// call sends one request in one write and returns the promise of its
// response.
function call(method, p, body, headers = {}) {
  const c = apiConn();
  const payload = body === undefined ? null : Buffer.from(body);
  let head = `${method} ${base}${p} HTTP/1.1\r\nHost: ${api}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (payload !== null) head += `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n`;
  const headBuf = Buffer.from(head + "\r\n", "latin1");
  const response = new Promise((resolve, reject) => c.queue.push({ resolve, reject }));
  c.socket.write(payload === null ? headBuf : Buffer.concat([headBuf, payload]));
  return response;
}

// answerAndNext sends an invocation's answer and returns the promise of
// the next invocation: the Runtime API answers the one request with it
// (Streamer-Then-Next). An answer the runtime refused stops this process
// from the runtime's side; until then it asks for the next one as usual.
function answerAndNext(p, body) {
  return call("POST", p, body, { "Streamer-Then-Next": "1" })
    .then((r) => (r.status === 200 ? r : call("GET", "/invocation/next")));
}

function errorDoc(err) {
  const e = err instanceof Error ? err : new Error(typeof err === "string" ? err : JSON.stringify(err));
  return JSON.stringify({
    errorType: e.name || "Error",
    errorMessage: e.message || String(err),
    stackTrace: String(e.stack || "").split("\n").slice(1).map((l) => l.trim()),
  });
}

async function loadHandler() {
  const spec = process.env._HANDLER || "";
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const slash = spec.lastIndexOf("/");
  const dot = spec.indexOf(".", slash + 1);
  if (dot < 0) throw Object.assign(new Error(`Bad handler ${spec}: want file.export`), { name: "Runtime.MalformedHandlerName" });
  const modPath = path.join(root, spec.slice(0, dot));
  const exportPath = spec.slice(dot + 1).split(".");
  let file = null;
  for (const ext of [".js", ".mjs", ".cjs"]) {
    if (fs.existsSync(modPath + ext)) { file = modPath + ext; break; }
  }
  if (!file) throw Object.assign(new Error(`Cannot find module '${spec.slice(0, dot)}'`), { name: "Runtime.ImportModuleError" });
  bundleSDK(file);
  const mod = await import(pathToFileURL(file).href);
  let fn = mod;
  for (const k of exportPath) fn = fn?.[k] ?? mod.default?.[k];
  if (typeof fn !== "function") throw Object.assign(new Error(`${spec} is undefined or not exported`), { name: "Runtime.HandlerNotFound" });
  return fn;
}

// bundleSDK lets an ES module handler import the SDK from
// STREAMER_NODE_SDK when nothing above it ships one. A resolve hook costs
// each process about 10 MB (a loader thread), so it is registered only
// then; CommonJS needs none (NODE_PATH).
function bundleSDK(file) {
  const sdk = process.env.STREAMER_NODE_SDK;
  if (!sdk || typeof module.register !== "function" || !isESM(file)) return;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "node_modules", "@aws-sdk"))) return;
    if (path.dirname(dir) === dir) break;
  }
  const parent = pathToFileURL(path.join(path.dirname(sdk), "lambda-runtime.mjs")).href;
  const hook = `export async function resolve(spec, ctx, next) {
  try { return await next(spec, ctx); } catch (e) {
    if (!spec.startsWith("@aws-sdk/") || e.code !== "ERR_MODULE_NOT_FOUND") throw e;
    return next(spec, { ...ctx, parentURL: ${JSON.stringify(parent)} });
  }
}`;
  module.register("data:text/javascript," + encodeURIComponent(hook));
}

// isESM: .mjs, or .js under a package.json with "type": "module".
function isESM(file) {
  if (file.endsWith(".mjs")) return true;
  if (!file.endsWith(".js")) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try { return JSON.parse(fs.readFileSync(pj, "utf8")).type === "module"; } catch { return false; }
    }
    if (path.dirname(dir) === dir) return false;
  }
}

function context(headers) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  return {
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

function run(fn, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const cb = (err, value) => {
      if (settled) return;
      settled = true;
      err ? reject(err) : resolve(value);
    };
    ctx.done = cb;
    ctx.succeed = (v) => cb(null, v);
    ctx.fail = (e) => cb(e);
    try {
      const out = fn(event, ctx, cb);
      if (fn.length < 3 || (out && typeof out.then === "function")) {
        Promise.resolve(out).then((v) => cb(null, v), (e) => cb(e));
      }
    } catch (e) {
      cb(e);
    }
  });
}

// The Node.js major version of the runtime the function names
// (AWS_EXECUTION_ENV=AWS_Lambda_nodejs24.x), whatever node runs the shim.
const runtimeMajor = Number((/nodejs(\d+)/.exec(process.env.AWS_EXECUTION_ENV || "") || [])[1] || 0);

let handler;
try {
  handler = await loadHandler();
  if (runtimeMajor >= 24 && handler.length >= 3) {
    throw Object.assign(
      new Error("ERROR: AWS Lambda does not support callback-based function handlers starting with Node.js 24: " +
        `${process.env._HANDLER} declares ${handler.length} parameters. Use an async handler (event, context) or a runtime before nodejs24.x.`),
      { name: "Runtime.CallbackHandlerDeprecated" });
  }
} catch (e) {
  console.error(e);
  await call("POST", "/init/error", errorDoc(e), { "Lambda-Runtime-Function-Error-Type": e.name || "Runtime.Unknown" });
  process.exit(1);
}

let pending = call("GET", "/invocation/next");
for (;;) {
  const next = await pending;
  const id = next.headers["lambda-runtime-aws-request-id"];
  let event;
  try {
    event = JSON.parse(next.body.toString("utf8"));
  } catch (e) {
    pending = answerAndNext(`/invocation/${id}/error`, errorDoc(e));
    continue;
  }
  let answer;
  try {
    const value = await run(handler, event, context(next.headers));
    answer = [`/invocation/${id}/response`, value === undefined ? "null" : JSON.stringify(value)];
  } catch (e) {
    console.error("Invoke Error", e);
    answer = [`/invocation/${id}/error`, errorDoc(e)];
  }
  pending = answerAndNext(...answer);
}
