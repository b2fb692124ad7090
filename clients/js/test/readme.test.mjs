// The README's "From the browser" snippet runs as printed against a real
// `streamer dev` (only the address is replaced by the test's).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { artifacts, pkgDir, repoDir, startDev } from "./dev.mjs";

test("the README snippet runs", async (t) => {
  const readme = readFileSync(join(repoDir, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## From the browser"));
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code, "a js block in the section");
  assert.ok(code.includes("ws://127.0.0.1:8080/dev"));
  const dev = await startDev(t);
  mkdirSync(artifacts, { recursive: true });
  // Inside the package, so "@streamer-go/client" resolves to itself.
  const file = join(artifacts, "readme-snippet.mjs");
  writeFileSync(file, code.replace("ws://127.0.0.1:8080/dev", dev.wsURL));
  const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: pkgDir, timeout: 20_000 });
  assert.match(stdout, /\{ text: 'hi' \}/);
  assert.match(stdout, /100% step 20 of 20/);
  assert.match(stdout, /\{ steps: 20, seconds: 2 \}/);
});
