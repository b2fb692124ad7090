// The client installs the way the README says, from the repository path into
// a project of its own, with no build step of the user's, and the README's
// "From the browser" snippet then runs as printed against a real
// `streamer dev` (only the address is replaced by the test's). npm pack of
// the same directory yields a publishable tarball.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { pkgDir, repoDir, startDev } from "./dev.mjs";

const exec = promisify(execFile);

/** The files of clients/js a fresh clone has: no node_modules, no dist. */
const cloned = ["package.json", "package-lock.json", "README.md", "LICENSE", "tsconfig.json", "scripts", "src"];

function section(readme, heading) {
  const start = readme.indexOf(heading);
  assert.ok(start >= 0, `README has ${heading}`);
  const next = readme.indexOf("\n## ", start + heading.length);
  return readme.slice(start, next < 0 ? undefined : next);
}

test("installed from the repository path, the README snippet runs", { timeout: 180_000 }, async (t) => {
  const readme = readFileSync(join(repoDir, "README.md"), "utf8");
  const browser = section(readme, "## From the browser");
  const install = /```sh\n([\s\S]*?)```/.exec(browser)?.[1];
  const code = /```js\n([\s\S]*?)```/.exec(browser)?.[1];
  assert.ok(install && code, "an sh and a js block in the section");
  assert.ok(install.includes("/path/to/streamer/clients/js"));
  assert.ok(code.includes("ws://127.0.0.1:8080/dev"));

  const work = mkdtempSync(join(tmpdir(), "streamer-client-"));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const clone = join(work, "streamer");
  for (const f of cloned) cpSync(join(pkgDir, f), join(clone, "clients", "js", f), { recursive: true });
  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true, type: "module" }));

  // The README's install lines, as printed but for the clone's path.
  const env = { ...process.env, npm_config_audit: "false", npm_config_fund: "false", npm_config_prefer_offline: "true" };
  for (const line of install.split("\n")) {
    const cmd = line.replace(/#.*/, "").trim();
    if (!cmd) continue;
    await exec("sh", ["-c", cmd.replaceAll("/path/to/streamer", clone)], { cwd: app, env, timeout: 150_000 });
  }
  assert.ok(existsSync(join(app, "node_modules", "@streamer-go", "client", "dist", "index.js")), "npm install built dist/");
  assert.ok(existsSync(join(app, "node_modules", "@streamer-go", "client", "dist", "index.d.ts")), "and its types");

  const dev = await startDev(t);
  const file = join(app, "snippet.mjs");
  writeFileSync(file, code.replace("ws://127.0.0.1:8080/dev", dev.wsURL));
  const { stdout } = await exec(process.execPath, [file], { cwd: app, timeout: 20_000 });
  assert.match(stdout, /\{ text: 'hi' \}/);
  assert.match(stdout, /100% step 20 of 20/);
  assert.match(stdout, /\{ steps: 20, seconds: 2 \}/);

  // npm pack of the same directory: what a publish would upload.
  const { stdout: packed } = await exec("npm", ["pack", "--dry-run", "--json", "--ignore-scripts", join(clone, "clients", "js")], { cwd: work, env, timeout: 60_000 });
  const [tarball] = JSON.parse(packed);
  const files = tarball.files.map((f) => f.path).sort();
  for (const want of ["LICENSE", "README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/client.js", "dist/client.d.ts", "src/index.ts"]) {
    assert.ok(files.includes(want), `the tarball has ${want}: ${files}`);
  }
  assert.deepEqual(files.filter((f) => !/^(LICENSE|README\.md|package\.json|dist\/[\w.]+\.(js|d\.ts)|src\/\w+\.ts)$/.test(f)), [], "nothing else in the tarball");
  assert.equal(tarball.filename, "streamer-go-client-0.1.0.tgz");
  assert.equal(readFileSync(join(pkgDir, "LICENSE"), "utf8"), readFileSync(join(repoDir, "LICENSE"), "utf8"), "the package's LICENSE is the repository's");
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  assert.equal(pkg.license, "Apache-2.0");
});
