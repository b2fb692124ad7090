// Builds the package (dist/: ESM + .d.ts) and refreshes the copy that
// `streamer dev` embeds (cmd/streamer/internal/devui/assets/client): the
// compiled .js files plus SOURCES, the sha256 of each source file it was
// built from, which a Go test compares with the sources so a stale copy
// fails `go test` (no npm needed there). With --check it refreshes
// nothing and fails when that copy is not exactly this build (make test).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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

/** stale lists how the embedded copy differs from a build in dist (empty: fresh). */
export function stale(dist) {
  const problems = [];
  const want = readdirSync(dist).filter((f) => f.endsWith(".js")).sort();
  const have = existsSync(embed) ? readdirSync(embed).filter((f) => f.endsWith(".js")).sort() : [];
  if (want.join() !== have.join()) problems.push(`files: embedded [${have}] vs built [${want}]`);
  for (const f of want) {
    if (have.includes(f) && readFileSync(join(embed, f), "utf8") !== readFileSync(join(dist, f), "utf8")) problems.push(`${f} differs`);
  }
  if (!existsSync(join(embed, "SOURCES")) || readFileSync(join(embed, "SOURCES"), "utf8") !== manifest()) problems.push("SOURCES differs");
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = build();
  if (process.argv.includes("--check")) {
    // make test: build the package, and fail when the copy streamer dev
    // embeds is not exactly this build.
    const problems = stale(dist);
    if (problems.length > 0) {
      console.error(`the embedded client (${embed}) is stale: run make js-build and commit it\n  ${problems.join("\n  ")}`);
      process.exit(1);
    }
    console.log("built dist/; the embedded client is fresh");
    process.exit(0);
  }
  rmSync(embed, { recursive: true, force: true });
  mkdirSync(embed, { recursive: true });
  for (const f of readdirSync(dist).filter((f) => f.endsWith(".js"))) copyFileSync(join(dist, f), join(embed, f));
  writeFileSync(join(embed, "SOURCES"), manifest());
  console.log(`built ${dist} and ${embed}`);
}
