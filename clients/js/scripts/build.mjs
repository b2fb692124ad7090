// Builds the package (dist/: ESM + .d.ts) and, without --dist, refreshes the copy that
// `streamer dev` embeds (cmd/streamer/internal/devui/assets/client): the
// compiled .js files plus SOURCES, the sha256 of each source file it was
// built from, which a Go test compares with the sources so a stale copy
// fails `go test` (no npm needed there).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const embed = join(pkg, "..", "..", "cmd", "streamer", "internal", "devui", "assets", "client");

/** The files the build depends on, relative to the package, sorted. */
export function sourceFiles() {
  const src = readdirSync(join(pkg, "src")).filter((f) => f.endsWith(".ts")).map((f) => `src/${f}`);
  return ["tsconfig.json", ...src].sort();
}

/** The manifest: one "sha256  path" line per source file. */
export function manifest() {
  return sourceFiles().map((f) => `${createHash("sha256").update(readFileSync(join(pkg, f))).digest("hex")}  ${f}\n`).join("");
}

export function build(outDir = join(pkg, "dist")) {
  rmSync(outDir, { recursive: true, force: true });
  execFileSync(process.execPath, [join(pkg, "node_modules", "typescript", "bin", "tsc"), "-p", join(pkg, "tsconfig.json"), "--outDir", outDir], { stdio: "inherit" });
  return outDir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = build();
  if (process.argv.includes("--dist")) process.exit(0); // the package only (tests)
  rmSync(embed, { recursive: true, force: true });
  mkdirSync(embed, { recursive: true });
  for (const f of readdirSync(dist).filter((f) => f.endsWith(".js"))) copyFileSync(join(dist, f), join(embed, f));
  writeFileSync(join(embed, "SOURCES"), manifest());
  console.log(`built ${dist} and ${embed}`);
}
