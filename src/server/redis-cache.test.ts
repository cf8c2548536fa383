// storage.cache.blobdescriptor: redis with a real redis-server (Debian's), started per file: two
// replicas over one filesystem root share what they know of links and blob sizes, so a delete
// through one is seen by the other at once, where the in-process cache is stale for a bounded
// time. And Redis is a cache only: a registry whose Redis is down still serves.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { pino } from "pino";
import { createDriver } from "../driver/index.js";
import { freePort } from "../testing/docker-registry.js";
import { buildImage, MediaType, pushImage } from "../testing/images.js";
import { startRedis, skipUnlessRedis, type RedisServer } from "../testing/redis.js";
import { createRegistryStorage, RegistryErrorCode } from "../storage/index.js";
import { startRegistry, type RunningRegistry } from "./index.js";
import { connectRedisCache } from "./redis-cache.js";

const PASSWORD = "a-redis-secret";

describe("redis blob descriptor cache", { skip: skipUnlessRedis() }, () => {
  let redis: RedisServer;
  let directory: string;

  before(async () => {
    redis = await startRedis({ password: PASSWORD });
    directory = await mkdtemp(join(tmpdir(), "berth-redis-"));
  });

  after(async () => {
    await redis?.stop();
    await rm(directory, { recursive: true, force: true });
  });

  function config(root: string, addr: string): Record<string, unknown> {
    return {
      version: "0.1",
      storage: {
        filesystem: { rootdirectory: root },
        delete: { enabled: true },
        cache: { blobdescriptor: "redis" },
        maintenance: { uploadpurging: { enabled: false } },
      },
      redis: { addr, password: PASSWORD, db: 3, dialtimeout: "2s", readtimeout: "2s" },
      http: { addr: "127.0.0.1:0" },
    };
  }

  it("a DELETE through one replica is seen by the other at once", async () => {
    const root = join(directory, "replicas");
    const one = await startRegistry({ logLevel: "silent", config: config(root, redis.addr) });
    const two = await startRegistry({ logLevel: "silent", config: config(root, redis.addr) });
    try {
      const image = buildImage({ layers: 1, layerSize: 512 });
      await pushImage(one.storage.repository("shared/app"), image, "v1");
      const layer = image.layers[0]!;
      const blobUrl = (registry: RunningRegistry): string =>
        `${registry.url}/v2/shared/app/blobs/${layer.digest}`;
      const manifestUrl = (registry: RunningRegistry): string =>
        `${registry.url}/v2/shared/app/manifests/${image.manifest.digest}`;
      const accept = { Accept: MediaType.OciManifest };
      // Both replicas have looked the blob and the manifest up (and so cached them).
      for (const registry of [one, two]) {
        assert.equal((await fetch(blobUrl(registry), { method: "HEAD" })).status, 200);
        const got = await fetch(manifestUrl(registry), { headers: accept });
        assert.equal(got.status, 200);
        await got.arrayBuffer();
      }
      // What the cache holds is in Redis (db 3), under Berth's keys.
      const client = new Redis({ port: redis.port, password: PASSWORD, db: 3 });
      try {
        const keys = await client.keys("berth:*");
        assert.ok(keys.some((key) => key.startsWith("berth:link:") && key.includes("/_layers/")));
        assert.ok(keys.includes(`berth:size:${layer.digest}`), keys.join("\n"));
      } finally {
        client.disconnect();
      }

      const deleted = await fetch(blobUrl(one), { method: "DELETE" });
      assert.equal(deleted.status, 202);
      assert.equal((await fetch(blobUrl(two), { method: "HEAD" })).status, 404);
      const manifestDeleted = await fetch(manifestUrl(two), { method: "DELETE" });
      assert.equal(manifestDeleted.status, 202);
      const gone = await fetch(manifestUrl(one), { headers: accept });
      assert.equal(gone.status, 404);
      await gone.arrayBuffer();
    } finally {
      await one.close();
      await two.close();
    }
  });

  it("in process instead, another replica's delete is believed stale for at most the TTL", async () => {
    const driver = await createDriver("filesystem", {
      rootdirectory: join(directory, "in-process"),
    });
    const one = createRegistryStorage(driver, { deleteEnabled: true });
    // Replica two believes for the default minute, replica three for 200 ms.
    const two = createRegistryStorage(driver, { deleteEnabled: true });
    const three = createRegistryStorage(driver, { deleteEnabled: true, descriptorTtlMs: 200 });
    const image = buildImage({ layers: 1, layerSize: 512 });
    await pushImage(one.repository("shared/app"), image, "v1");
    for (const replica of [two, three]) {
      assert.equal(
        await replica.repository("shared/app").manifests.exists(image.manifest.digest),
        true,
      );
    }
    await one.repository("shared/app").manifests.delete(image.manifest.digest);
    // Two learnt the revision link less than a minute ago: it still believes it.
    assert.equal(await two.repository("shared/app").manifests.exists(image.manifest.digest), true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(
      await three.repository("shared/app").manifests.exists(image.manifest.digest),
      false,
    );

    // The same two replicas with Redis: no such window.
    const logger = pino({ level: "silent" });
    const redisConfig = {
      addr: redis.addr,
      password: PASSWORD,
      db: 4,
      dialTimeoutMs: 0,
      commandTimeoutMs: 0,
    };
    const caches = [
      await connectRedisCache(redisConfig, logger),
      await connectRedisCache(redisConfig, logger),
    ];
    try {
      const [shared1, shared2] = caches.map((descriptorCache) =>
        createRegistryStorage(driver, { deleteEnabled: true, descriptorCache }),
      );
      await pushImage(shared1!.repository("shared/app"), image, "v2");
      const repository2 = shared2!.repository("shared/app");
      assert.equal(await repository2.manifests.exists(image.manifest.digest), true);
      await shared1!.repository("shared/app").manifests.delete(image.manifest.digest);
      assert.equal(await repository2.manifests.exists(image.manifest.digest), false);
      await assert.rejects(repository2.blobs.stat(image.manifest.digest), {
        code: RegistryErrorCode.BlobUnknown,
      });
    } finally {
      await Promise.all(caches.map((cache) => cache.close()));
    }
  });

  it("a registry whose Redis does not answer still serves pushes and pulls from storage", async () => {
    const port = await freePort();
    const registry = await startRegistry({
      logLevel: "silent",
      config: config(join(directory, "no-redis"), `127.0.0.1:${port}`),
    });
    try {
      const image = buildImage({ layers: 1, layerSize: 512 });
      for (const blob of [...image.layers, image.config]) {
        const response = await fetch(
          `${registry.url}/v2/lonely/app/blobs/uploads/?digest=${encodeURIComponent(blob.digest)}`,
          { method: "POST", body: blob.bytes },
        );
        assert.equal(response.status, 201);
      }
      const put = await fetch(`${registry.url}/v2/lonely/app/manifests/v1`, {
        method: "PUT",
        body: image.manifest.bytes,
        headers: { "Content-Type": MediaType.OciManifest },
      });
      assert.equal(put.status, 201);
      const pulled = await fetch(`${registry.url}/v2/lonely/app/blobs/${image.layers[0]!.digest}`);
      assert.equal(pulled.status, 200);
      assert.deepEqual(Buffer.from(await pulled.arrayBuffer()), image.layers[0]!.bytes);
    } finally {
      await registry.close();
    }
  });
});
