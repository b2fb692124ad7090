// The copy of the client that `streamer dev` embeds must be exactly what
// the sources compile to (the Go side checks the source hashes only).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { build, manifest } from "../scripts/build.mjs";
import { repoDir } from "./dev.mjs";

const embedded = join(repoDir, "cmd", "streamer", "internal", "devui", "assets", "client");

test("the embedded client is the build of the current sources (else: make js-build)", () => {
  const out = mkdtempSync(join(tmpdir(), "streamer-client-build-"));
  try {
    build(out);
    const fresh = readdirSync(out).filter((f) => f.endsWith(".js")).sort();
    const have = readdirSync(embedded).filter((f) => f.endsWith(".js")).sort();
    assert.deepEqual(have, fresh, "the same files");
    for (const f of fresh) assert.equal(readFileSync(join(embedded, f), "utf8"), readFileSync(join(out, f), "utf8"), `${f} is stale: run make js-build`);
    assert.equal(readFileSync(join(embedded, "SOURCES"), "utf8"), manifest(), "SOURCES is stale: run make js-build");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
