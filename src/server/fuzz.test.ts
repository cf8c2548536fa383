// The fuzz test of issue 11: thousands of malformed requests (names, digests, tags, ranges,
// manifests, queries, methods, headers, traversal, upload sessions used wrongly, and raw bytes
// Node's HTTP parser rejects) against Berth on a filesystem root, in a child process. No answer
// may be a 5xx; every error answer is the OCI error envelope (HEAD: no body); nothing is written
// outside the root (a sentinel directory beside it) or off the storage layout; afterwards the
// server answers /v2/ and /debug/health, and its memory after a full collection is back near
// what it was before. Seeded: the seed is printed, BERTH_FUZZ_SEED repeats a run, and a failure
// names each offending request with its index. BERTH_FUZZ_COUNT changes the number of cases;
// `npm run fuzz` is the long version (docs/reliability.md).

import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fuzzSeed } from "../testing/fuzz-cases.js";
import { escapes, prepareFuzzDirectory, startFuzzTarget } from "../testing/fuzz-target.js";
import { describeFindings, pushFuzzSeed, runFuzz } from "../testing/fuzz.js";

const MiB = 1024 * 1024;
const seed = Number(process.env.BERTH_FUZZ_SEED ?? randomInt(2 ** 31));
const count = Number(process.env.BERTH_FUZZ_COUNT ?? 3000);

describe("fuzz", () => {
  it(`${count} malformed requests (seed ${seed}): no 5xx, every error in the envelope, nothing written outside the root, healthy and memory back down after`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "berth-fuzz-"));
    await prepareFuzzDirectory(dir);
    const target = await startFuzzTarget(dir);
    try {
      const registrySeed = fuzzSeed();
      await pushFuzzSeed(target.url, registrySeed);
      // A first pass of valid requests, so what the server allocates once is in the baseline.
      for (let i = 0; i < 50; i++) {
        const response = await fetch(`${target.url}/v2/${registrySeed.repository}/manifests/${registrySeed.tag}`); // prettier-ignore
        assert.equal(response.status, 200);
        await response.arrayBuffer();
      }
      const before = await target.memory();

      const report = await runFuzz({ url: target.url, seed, count, registrySeed });
      t.diagnostic(`seed ${seed}: ${report.cases} cases, ${report.requests} requests, statuses ${JSON.stringify(report.statuses)}, closed without an answer ${JSON.stringify(report.closed)}, resent after a kept-alive connection closed ${report.resent}`); // prettier-ignore
      assert.equal(target.exited(), undefined, `Berth exited during the fuzzing: ${target.output()}`); // prettier-ignore
      const findings = report.serverErrors.length + report.envelopeViolations.length + report.unanswered.length; // prettier-ignore
      assert.equal(findings, 0, `${describeFindings(report)}\nBerth's log:\n${target.output()}`);

      assert.equal((await fetch(`${target.url}/v2/`)).status, 200);
      const health = await fetch(`${target.debugUrl}/debug/health`);
      assert.equal(health.status, 200, await health.text());

      const after = await target.memory();
      t.diagnostic(`memory after a full GC: heap ${(before.heapUsed / MiB).toFixed(1)} -> ${(after.heapUsed / MiB).toFixed(1)} MiB, rss ${(before.rss / MiB).toFixed(1)} -> ${(after.rss / MiB).toFixed(1)} MiB`); // prettier-ignore
      // Generous bounds: a leak of even a few bytes per request over thousands stays under them
      // only if it is tiny; what is held for good (caches are bounded) fits easily.
      assert.ok(after.heapUsed - before.heapUsed < 48 * MiB, `heap grew from ${before.heapUsed} to ${after.heapUsed}`); // prettier-ignore
      assert.ok(after.rss - before.rss < 192 * MiB, `rss grew from ${before.rss} to ${after.rss}`); // prettier-ignore
      assert.ok(after.external - before.external < 48 * MiB, `external memory grew from ${before.external} to ${after.external}`); // prettier-ignore
    } finally {
      await target.stop();
    }
    assert.deepEqual(await escapes(dir), []);
    await rm(dir, { recursive: true, force: true });
  });
});
