// The C heap's trim, for real: in a child node (its own heap, `--expose-gc`), buffers carved from
// glibc's heap and freed below a live one stay resident until the trim gives their pages back.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { lazyMallocTrim, loadMallocTrim } from "./malloc-trim.js";

const run = promisify(execFile);
const moduleUrl = new URL("./malloc-trim.js", import.meta.url).href;

/**
 * Allocates 120 MB of 60 KB buffers (under glibc's mmap threshold: from its heap), keeps one in 50
 * (they pin the heap's top), collects, and prints RSS in KiB before and after `how` trims.
 */
const CHILD = `
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { lazyMallocTrim, loadMallocTrim } from ${JSON.stringify(moduleUrl)};
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]);
let kept = [];
for (let i = 0; i < 2000; i++) kept.push(Buffer.alloc(60000, 1));
kept = kept.filter((_, i) => i % 50 === 0);
globalThis.gc();
await sleep(200);
globalThis.gc();
const before = rss();
if (process.argv[2] === "lazy") {
  let reason;
  const trim = lazyMallocTrim((why) => (reason = why));
  trim();
  // The first call only starts loading koffi; the trim follows once it is loaded.
  for (let i = 0; i < 100 && rss() > before - 50000 && reason === undefined; i++) await sleep(50);
  if (reason !== undefined) throw new Error(reason);
} else {
  const { trim, reason } = await loadMallocTrim();
  if (trim === undefined) throw new Error(reason);
  trim();
}
console.log(JSON.stringify({ before, after: rss(), kept: kept.length }));
`;

async function trimmedChild(how: "load" | "lazy"): Promise<{ before: number; after: number }> {
  const { stdout } = await run(
    process.execPath,
    ["--expose-gc", "--input-type=module", "--eval", CHILD, how],
    { cwd: fileURLToPath(new URL(".", import.meta.url)) },
  );
  return JSON.parse(stdout) as { before: number; after: number };
}

describe("malloc_trim through koffi", () => {
  it("loads on Linux with koffi installed", async () => {
    const { trim, reason } = await loadMallocTrim();
    assert.equal(reason, undefined);
    assert.equal(typeof trim, "function");
  });

  it("gives the freed pages below a live buffer back", async () => {
    const { before, after } = await trimmedChild("load");
    // ~115 MB were freed under 40 live 60 KB buffers: most of it must leave RSS.
    assert.ok(before - after > 50_000, `RSS ${before} KiB -> ${after} KiB`);
  });

  it("lazily: the first call loads koffi and then trims", async () => {
    const { before, after } = await trimmedChild("lazy");
    assert.ok(before - after > 50_000, `RSS ${before} KiB -> ${after} KiB`);
  });

  it("reports why once when it cannot trim, and calls nothing", async () => {
    // Not Linux is the one reason a test can bring about in this process.
    const platform = Object.getOwnPropertyDescriptor(process, "platform")!;
    Object.defineProperty(process, "platform", { value: "darwin" });
    try {
      const reasons: string[] = [];
      const trim = lazyMallocTrim((reason) => reasons.push(reason));
      trim();
      trim();
      await new Promise((resolve) => setTimeout(resolve, 50));
      trim();
      assert.deepEqual(reasons, ["not on Linux (darwin)"]);
    } finally {
      Object.defineProperty(process, "platform", platform);
    }
  });
});
