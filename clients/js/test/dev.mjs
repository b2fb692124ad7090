// Test helpers: build and start a real `streamer dev`, and sign JWTs.
import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
export const repoDir = join(pkgDir, "..", "..");
export const artifacts = join(pkgDir, "test-results");

/** The streamer binary: $STREAMER_BIN (make test builds it once), else built here. */
export function streamerBin() {
  if (process.env.STREAMER_BIN) return process.env.STREAMER_BIN;
  const bin = join(artifacts, "bin", "streamer");
  mkdirSync(dirname(bin), { recursive: true });
  execFileSync("go", ["build", "-o", bin, "./cmd/streamer"], { cwd: repoDir, stdio: "inherit" });
  process.env.STREAMER_BIN = bin;
  return bin;
}

/**
 * startDev runs `streamer dev --addr 127.0.0.1:0 args...` and resolves once
 * it printed its URLs. stop() sends SIGTERM and resolves with the exit code.
 */
export async function startDev(t, ...args) {
  const bin = streamerBin();
  if (!existsSync(bin)) throw new Error(`no binary at ${bin}`);
  const proc = spawn(bin, ["dev", "--addr", "127.0.0.1:0", "--log-level", "debug", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const exited = new Promise((res) => proc.on("exit", (code, sig) => res(code ?? sig)));
  const urls = {};
  const lines = createInterface({ input: proc.stdout });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`streamer dev printed no URLs in 20 s:\n${stderr}`)), 20_000);
    exited.then((c) => reject(new Error(`streamer dev exited (${c}):\n${stderr}`)));
    lines.on("line", (l) => {
      const m = /^([A-Za-z ]+):\s+(\S+)/.exec(l);
      if (m) urls[m[1].trim()] = m[2];
      if (urls["WebSocket URL"] && urls["Management endpoint"] && urls["Demo page"]) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  let stopped = false;
  const dev = {
    wsURL: urls["WebSocket URL"],
    endpoint: urls["Management endpoint"],
    page: urls["Demo page"],
    console: urls["Dev console"],
    stderr: () => stderr,
    async stop() {
      if (stopped) return exited;
      stopped = true;
      proc.kill("SIGTERM");
      return exited;
    },
    /** DELETE @connections/{id}: the runtime closes that socket. */
    async disconnect(id) {
      const res = await fetch(`${dev.endpoint}/@connections/${encodeURIComponent(id)}`, { method: "DELETE" });
      return res.status;
    },
  };
  t?.after?.(async () => {
    const code = await dev.stop();
    if (code !== 0) console.error(`streamer dev exited ${code}:\n${stderr}`);
  });
  return dev;
}

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** signHS256 makes a JWT that `streamer dev --jwt-algorithms HS256` accepts. */
export function signHS256(secret, claims) {
  const head = b64url({ alg: "HS256", typ: "JWT" });
  const body = b64url({ exp: Math.floor(Date.now() / 1000) + 600, iat: Math.floor(Date.now() / 1000), ...claims });
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/** until polls cond every 20 ms until it is truthy (or fails after ms). */
export async function until(cond, ms = 10_000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** once resolves with the next event of a client. */
export function once(client, event, pred = () => true) {
  return new Promise((resolve) => {
    const off = client.on(event, (ev) => {
      if (!pred(ev)) return;
      off();
      resolve(ev);
    });
  });
}
