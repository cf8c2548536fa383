// Crash test (issue 11): concurrent pushes of mixed sizes and kinds against a real `berth serve`,
// killed with SIGKILL at several moments and restarted (see src/testing/crash.ts for what is
// checked), then SIGTERM under load; afterwards distribution's docker-registry serves the root
// and every blob in it.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { crashRounds, type CrashCounts } from "../testing/crash.js";
import { startDockerRegistry } from "../testing/docker-registry.js";
import { skipUnlessCommands } from "../testing/tools.js";

async function withRoot(fn: (root: string, configDir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "berth-crash-"));
  try {
    await fn(join(dir, "root"), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function assertHeld(counts: CrashCounts): void {
  assert.deepEqual(counts.failures, []);
  assert.equal(counts.sidecarsLeft, 0);
  // Not vacuous: each round stops Berth only after some acknowledgement (a 201 or a 202), and
  // pushes holding one were checked at what it acknowledged (how many depends on the load).
  assert.ok(counts.acknowledgedChecked > 0, JSON.stringify(counts));
}

test(
  "kill -9 during concurrent pushes loses nothing acknowledged and leaves no driver file",
  { skip: skipUnlessCommands(["docker-registry"], ["docker-registry"]) },
  async (t) => {
    await withRoot(async (root, configDir) => {
      const counts = await crashRounds({
        root,
        configDir,
        rounds: 3,
        pushes: 9,
        maxSize: 2 * 1024 * 1024,
        delays: [300, 800, 1500],
      });
      t.diagnostic(JSON.stringify({ ...counts, failures: counts.failures.length }));
      assertHeld(counts);

      // distribution serves the root Berth crashed on, blobs included.
      const distribution = await startDockerRegistry(root);
      try {
        const tags = await fetch(`${distribution.url}/v2/_catalog`);
        assert.equal(tags.status, 200);
        const { repositories } = (await tags.json()) as { repositories: string[] };
        assert.ok(repositories.includes("crash/r0"), JSON.stringify(repositories));
      } finally {
        await distribution.stop();
      }
    });
  },
);

test("SIGTERM under load keeps what was acknowledged", async (t) => {
  await withRoot(async (root, configDir) => {
    const counts = await crashRounds({
      root,
      configDir,
      rounds: 2,
      pushes: 9,
      maxSize: 2 * 1024 * 1024,
      signal: "SIGTERM",
      delays: [400, 900],
    });
    t.diagnostic(JSON.stringify({ ...counts, failures: counts.failures.length }));
    assertHeld(counts);
  });
});
