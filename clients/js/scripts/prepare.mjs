// npm runs this "prepare" script on `npm install` inside this directory,
// before `npm pack` and `npm publish`, and on `npm install <path>` of this
// directory from another project. In that last case npm links the directory
// without installing its devDependencies, so TypeScript may be missing: it
// is installed first from package-lock.json (the pinned version, from the
// npm cache or registry), then dist/ is built (ESM + .d.ts). The copy that
// `streamer dev` embeds is left alone: `npm run build` refreshes it.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "./build.mjs";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

if (!existsSync(join(pkg, "node_modules", "typescript", "bin", "tsc"))) {
  // npm_execpath is the npm running this script; --ignore-scripts keeps
  // this nested install from running prepare again.
  const npm = process.env.npm_execpath;
  const [cmd, ...pre] = npm ? [process.execPath, npm] : ["npm"];
  execFileSync(cmd, [...pre, "ci", "--include=dev", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: pkg, stdio: ["ignore", 2, 2] }); // stdout stays npm's (npm pack --json)
}
build();
