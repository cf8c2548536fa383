// Test support: online garbage collection under fire, the torture run of torture.ts (pushers,
// mounts, tag moves, deletes, orphans) against registries collecting every second with a delay of
// one second, on the filesystem (one registry, untagged manifests collected) and on Ceph RGW
// (three replicas sharing one bucket and one Redis for their blob descriptor cache). Afterwards
// every acknowledged image that was not deleted pulls completely from every replica, and a final
// collection with nothing running leaves no blob that no manifest references. `npm test` runs it
// for a few seconds per backend (src/server/gc-torture.test.ts); `npm run torture` for longer
// (src/server/gc-torture.ts; GC_TORTURE_SECONDS overrides both).

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import type { StorageDriver } from "../driver/index.js";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { startCeph, type CephCluster } from "./ceph.js";
import { startRedis, type RedisServer } from "./redis.js";
import { skipUnlessCommands } from "./tools.js";
import { Torture } from "./torture.js";

const BLOBS = "/docker/registry/v2/blobs";
const REPOSITORIES = "/docker/registry/v2/repositories";

function gcSection(untagged: boolean): Record<string, unknown> {
  return { enabled: true, interval: "1s", delay: "1s", untagged };
}

/** Every blob digest stored, and every digest a manifest revision references (itself included). */
async function storedAndReferenced(
  driver: StorageDriver,
): Promise<{ stored: Set<string>; referenced: Set<string> }> {
  const stored = new Set<string>();
  await driver.walk(BLOBS, (info) => {
    const match = /\/sha256\/[0-9a-f]{2}\/([0-9a-f]{64})\/data$/.exec(info.path);
    if (match) stored.add(`sha256:${match[1]}`);
  });
  const referenced = new Set<string>();
  const revisions: string[] = [];
  await driver.walk(REPOSITORIES, (info) => {
    const match = /\/_manifests\/revisions\/sha256\/([0-9a-f]{64})\/link$/.exec(info.path);
    if (match) revisions.push(`sha256:${match[1]}`);
  });
  for (const digest of revisions) {
    referenced.add(digest);
    const hex = digest.slice(7);
    const bytes = await driver.getContent(`${BLOBS}/sha256/${hex.slice(0, 2)}/${hex}/data`);
    const manifest = JSON.parse(Buffer.from(bytes).toString("utf8")) as {
      config?: { digest: string };
      layers?: { digest: string }[];
      manifests?: { digest: string }[];
    };
    if (manifest.config) referenced.add(manifest.config.digest);
    for (const item of [...(manifest.layers ?? []), ...(manifest.manifests ?? [])]) {
      referenced.add(item.digest);
    }
  }
  return { stored, referenced };
}

async function torture(
  t: TestContext,
  registries: RunningRegistry[],
  untagged: boolean,
  seconds: number,
): Promise<void> {
  const run = new Torture({
    urls: registries.map((registry) => registry.url),
    durationMs: seconds * 1000,
    untagged,
  });
  const counts = await run.run();
  const stats = registries.map((registry) => registry.collector!.stats);
  // The orphans are garbage once a second old: wait (bounded) for a collector to take some.
  for (let waited = 0; waited < 60 && !stats.some((s) => s.deletedBlobs > 0); waited++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await Promise.all(registries.map((registry) => registry.collector!.stop()));
  assert.deepEqual(counts.errors, [], "requests that failed");
  assert.equal(
    stats.reduce((sum, s) => sum + s.failed, 0),
    0,
    `failed collections: ${stats.map((s) => s.lastError ?? "").join("\n")}`,
  );
  const pulled = await run.assertPullable();

  const final = await registries[0]!.storage.garbageCollect({ deleteUntagged: untagged });
  const { stored, referenced } = await storedAndReferenced(registries[0]!.driver);
  const unreferenced = [...stored].filter((digest) => !referenced.has(digest));
  assert.deepEqual(unreferenced, [], "blobs left that no manifest references");
  assert.equal(await run.assertPullable(), pulled);

  const sum = (key: Exclude<keyof (typeof stats)[number], "lastError">): number =>
    stats.reduce((total, s) => total + s[key], 0);
  const report = {
    seconds,
    replicas: registries.length,
    pushes: counts.pushes,
    refused: counts.refused,
    mounts: counts.mounts,
    tagMoves: counts.tagMoves,
    deletes: counts.deletes,
    deletesCollectedFirst: counts.collectedFirst,
    orphans: counts.orphans,
    gcRuns: sum("runs"),
    gcSkippedLeaseHeld: sum("skipped"),
    blobsCollected: sum("deletedBlobs"),
    manifestsCollected: sum("deletedManifests"),
    blobsPutBack: sum("restoredBlobs"),
    finalGcBlobs: final.deletedBlobs.length,
    imagesVerified: pulled,
  };
  t.diagnostic(JSON.stringify(report));
  process.stdout.write(
    `gc torture (${registries[0]!.config.storage.driver}): ${JSON.stringify(report)}\n`,
  );
  assert.ok(counts.pushes > 0 && sum("runs") > 0, "the run pushed and collected");
  assert.ok(sum("deletedBlobs") > 0, "the collectors collected something");
}

/** Defines the torture suites, each pushing for `seconds`. */
export function defineTortureSuites(seconds: number): void {
  describe("online garbage collection torture, filesystem", () => {
    let directory: string;
    let registry: RunningRegistry;

    before(async () => {
      directory = await mkdtemp(join(tmpdir(), "berth-gc-torture-"));
      registry = await startRegistry({
        logLevel: process.env.GC_TORTURE_LOG === "error" ? "error" : "silent",
        config: {
          version: "0.1",
          storage: {
            filesystem: { rootdirectory: directory },
            delete: { enabled: true },
            maintenance: { gc: gcSection(true), uploadpurging: { enabled: false } },
          },
          http: { addr: "127.0.0.1:0" },
        },
      });
    });

    after(async () => {
      await registry?.close();
      await rm(directory, { recursive: true, force: true });
    });

    it("never loses an acknowledged image while collecting every second", async (t) => {
      await torture(t, [registry], true, seconds);
    });
  });

  describe(
    "online garbage collection torture, three replicas on Ceph RGW sharing Redis",
    {
      skip: skipUnlessCommands(
        ["ceph-mon", "ceph-osd", "radosgw", "ceph", "redis-server"],
        ["ceph-mon", "ceph-osd", "radosgw", "ceph-common", "redis-server"],
      ),
    },
    () => {
      let ceph: CephCluster;
      let redis: RedisServer;
      const registries: RunningRegistry[] = [];

      before(async () => {
        redis = await startRedis();
        ceph = await startCeph();
        await ceph.createBucket("berth-gc");
        for (let index = 0; index < 3; index++) {
          registries.push(
            await startRegistry({
              logLevel: process.env.GC_TORTURE_LOG === "error" ? "error" : "silent",
              config: {
                version: "0.1",
                storage: {
                  s3: {
                    bucket: "berth-gc",
                    region: ceph.region,
                    regionendpoint: ceph.endpoint,
                    forcepathstyle: true,
                    accesskey: ceph.accessKey,
                    secretkey: ceph.secretKey,
                    rootdirectory: "/gc",
                  },
                  delete: { enabled: true },
                  redirect: { disable: true },
                  cache: { blobdescriptor: "redis" },
                  maintenance: { gc: gcSection(false), uploadpurging: { enabled: false } },
                },
                redis: { addr: redis.addr },
                http: { addr: "127.0.0.1:0" },
              },
            }),
          );
        }
      });

      after(async () => {
        await Promise.all(registries.map((registry) => registry.close()));
        await ceph?.stop();
        await redis?.stop();
      });

      it("never loses an acknowledged image while replicas push and one collects", async (t) => {
        await torture(t, registries, false, seconds);
      });
    },
  );
}
