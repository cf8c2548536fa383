// Online garbage collection's races, forced one at a time: a driver that runs a push at the exact
// step of the sweep where it hurts most (just before a blob is moved aside, just after, just before
// an untagged manifest is removed), and the lease between collectors. See docs/gc.md.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createDriver, type StorageDriver } from "../driver/index.js";
import { buildImage, MediaType, pushBlob, pushImage, type Content } from "../testing/images.js";
import { rejectsWith } from "../testing/storage-drivers.js";
import { CLOCK_SLACK_MS } from "./gc.js";
import { createRegistryStorage, RegistryErrorCode, type BlobInfo } from "./index.js";

const DELAY_MS = 100;

/** Waits until what exists now is older than the delay (and the timestamp slack). */
const age = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, DELAY_MS + CLOCK_SLACK_MS + 100));

/** An inmemory driver whose move and delete call `hook` (once, when it returns true) first. */
async function hookedDriver(): Promise<{
  driver: StorageDriver;
  before: (hook: (op: string, path: string, target?: string) => Promise<boolean>) => void;
  after: (hook: (op: string, path: string, target?: string) => Promise<boolean>) => void;
}> {
  const inner = await createDriver("inmemory", {});
  let beforeHook: ((op: string, path: string, target?: string) => Promise<boolean>) | undefined;
  let afterHook: typeof beforeHook;
  const run = async (
    which: "before" | "after",
    op: string,
    path: string,
    target?: string,
  ): Promise<void> => {
    const hook = which === "before" ? beforeHook : afterHook;
    if (hook !== undefined && (await hook(op, path, target))) {
      if (which === "before") beforeHook = undefined;
      else afterHook = undefined;
    }
  };
  const driver = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === "move" || property === "delete") {
        return async (path: string, second?: unknown) => {
          const to = typeof second === "string" ? second : undefined;
          await run("before", property, path, to);
          if (property === "move") await target.move(path, to!);
          else await target.delete(path);
          await run("after", property, path, to);
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === "function" ? (value.bind(target) as unknown) : value;
    },
  });
  return {
    driver,
    before: (hook) => void (beforeHook = hook),
    after: (hook) => void (afterHook = hook),
  };
}

describe("online garbage collection races", () => {
  it("puts back a blob a manifest PUT relied on just before the sweep moved it aside", async () => {
    const { driver, before } = await hookedDriver();
    const storage = createRegistryStorage(driver, { gcDelayMs: DELAY_MS, deleteEnabled: true });
    const app = storage.repository("race/app");
    const image = buildImage({ layers: 1, layerSize: 256 });
    for (const blob of [...image.layers, image.config]) await pushBlob(app, blob);
    await age();
    let pushed = false;
    before(async (op, _path, target) => {
      if (op !== "move" || !target?.includes("/berth/gc/trash/")) return false;
      // The push checks the blobs while they are still in place: it must be acknowledged.
      await app.manifests.put(image.manifest.bytes, MediaType.OciManifest, { tag: "v1" });
      pushed = true;
      return true;
    });
    const result = await storage.garbageCollect({ delayMs: DELAY_MS });
    assert.ok(pushed, "the push ran during the sweep");
    assert.ok(result.restoredBlobs >= 1, `restored ${result.restoredBlobs}`);
    assert.deepEqual(result.deletedBlobs, []);
    for (const blob of [...image.layers, image.config]) {
      assert.equal((await app.blobs.stat(blob.digest)).size, blob.size, blob.digest);
    }
    // And the next collection keeps them: the manifest references them now.
    await age();
    const again = await storage.garbageCollect({ delayMs: DELAY_MS });
    assert.deepEqual(again.deletedBlobs, []);
  });

  it("refuses a manifest PUT whose blob the sweep has aside; the client uploads again", async () => {
    const { driver, after } = await hookedDriver();
    const storage = createRegistryStorage(driver, { gcDelayMs: DELAY_MS, deleteEnabled: true });
    const app = storage.repository("race/app");
    const image = buildImage({ layers: 1, layerSize: 256 });
    for (const blob of [...image.layers, image.config]) await pushBlob(app, blob);
    await age();
    let refused = false;
    after(async (op, _path, target) => {
      if (op !== "move" || !target?.includes("/berth/gc/trash/")) return false;
      await assert.rejects(
        app.manifests.put(image.manifest.bytes, MediaType.OciManifest, { tag: "v1" }),
        rejectsWith(RegistryErrorCode.ManifestBlobUnknown),
      );
      refused = true;
      return true;
    });
    await storage.garbageCollect({ delayMs: DELAY_MS });
    assert.ok(refused, "the PUT was refused, not acknowledged");
    // As a client does after MANIFEST_BLOB_UNKNOWN: upload what is missing, PUT again.
    for (const blob of [...image.layers, image.config]) await pushBlob(app, blob);
    await app.manifests.put(image.manifest.bytes, MediaType.OciManifest, { tag: "v1" });
    for (const blob of [...image.layers, image.config]) await app.blobs.stat(blob.digest);
  });

  it("puts back an untagged manifest pushed again while the sweep removed it", async () => {
    const { driver, before } = await hookedDriver();
    const storage = createRegistryStorage(driver, { gcDelayMs: DELAY_MS, deleteEnabled: true });
    const app = storage.repository("race/app");
    const image = buildImage({ layers: 1, layerSize: 256 });
    await pushImage(app, image);
    await age();
    before(async (op, path) => {
      if (op !== "delete" || !path.includes("/_manifests/revisions/")) return false;
      await app.manifests.put(image.manifest.bytes, MediaType.OciManifest, { tag: "again" });
      return true;
    });
    const result = await storage.garbageCollect({ delayMs: DELAY_MS, deleteUntagged: true });
    assert.equal(result.restoredManifests, 1);
    assert.deepEqual(result.deletedManifests, []);
    assert.deepEqual(result.deletedBlobs, []);
    const stored = await app.manifests.get(image.manifest.digest);
    assert.equal(stored.digest, image.manifest.digest);
    for (const blob of [...image.layers, image.config]) await app.blobs.stat(blob.digest);
  });

  it("keeps what is younger than the delay, collects it once older", async () => {
    const driver = await createDriver("inmemory", {});
    const storage = createRegistryStorage(driver, { gcDelayMs: DELAY_MS });
    const image = buildImage({ layers: 2, layerSize: 128 });
    for (const blob of image.layers) await pushBlob(storage.repository("young/app"), blob);
    const young = await storage.garbageCollect({ delayMs: DELAY_MS });
    assert.deepEqual(young.deletedBlobs, []);
    await age();
    const old = await storage.garbageCollect({ delayMs: DELAY_MS });
    assert.deepEqual(old.deletedBlobs, image.layers.map((layer) => layer.digest).sort());
    assert.equal(
      old.freedBytes,
      image.layers.reduce((sum, layer) => sum + layer.size, 0),
    );
  });
  it("a blob HEAD answered from memory is one the collector keeps", async () => {
    const driver = await createDriver("inmemory", {});
    const storage = createRegistryStorage(driver, { gcDelayMs: DELAY_MS });
    const app = storage.repository("cached/app");
    const [headed, other] = buildImage({ layers: 2, layerSize: 128 }).layers as [Content, Content];
    for (const blob of [headed, other]) await pushBlob(app, blob);
    await age();
    // Old enough to collect, and the upload's protection long expired: no answer from memory.
    assert.equal(app.blobs.statCached!(headed.digest), undefined);
    // A HEAD through the storage layer refreshes the protection; from then on (for delay/2) it is
    // answered from memory. A stall of the event loop may let the window pass: then try again.
    let cached: BlobInfo | undefined;
    for (let attempt = 0; attempt < 10 && cached === undefined; attempt++) {
      await app.blobs.stat(headed.digest);
      cached = app.blobs.statCached!(headed.digest);
    }
    assert.deepEqual(cached, { digest: headed.digest, size: headed.size });
    const result = await storage.garbageCollect({ delayMs: DELAY_MS });
    assert.deepEqual(result.deletedBlobs, [other.digest], "only the blob nobody asked for");
    assert.equal((await app.blobs.stat(headed.digest)).size, headed.size);
    assert.equal(app.blobs.statCached!(other.digest), undefined);
    await assert.rejects(app.blobs.stat(other.digest), rejectsWith(RegistryErrorCode.BlobUnknown));
  });
});

describe("the collector's lease", () => {
  it("one holder at a time; released, expired and contested leases", async () => {
    const driver = await createDriver("inmemory", {});
    const storage = createRegistryStorage(driver);
    const first = await storage.acquireGcLease("a", 60_000);
    assert.ok(first);
    assert.equal(await storage.acquireGcLease("b", 60_000), undefined);
    assert.equal(await first.renew(), true);
    await first.release();
    const second = await storage.acquireGcLease("b", 1);
    assert.ok(second, "free after release");
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Expired: of several replicas taking it over at once, exactly one gets it.
    const contenders = await Promise.all(
      ["c", "d", "e", "f"].map((owner) => storage.acquireGcLease(owner, 60_000)),
    );
    assert.equal(contenders.filter((lease) => lease !== undefined).length, 1);
    assert.equal(await second.renew(), false, "the old holder learns it lost the lease");
  });
});
