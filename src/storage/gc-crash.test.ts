// Refresh records are written with the driver's touch, which the filesystem driver does not sync: a
// crash of the machine may lose a record or leave its older modTime (docs/gc.md, "Crashes"). What
// keeps an acknowledged push safe from a collection after such a crash is the synced link the same
// acknowledgement wrote after its refresh: a layer link for an upload or a mount, a revision link
// for a manifest PUT. These tests put the records back where a crash can leave them and collect as
// the restarted registry would; they fail if an acknowledgement stops writing that link (say, one
// skipped because the link is known to exist), which would leave the unsynced record alone on
// guard.

import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createDriver } from "../driver/index.js";
import { buildImage, content, MediaType, pushBlob, pushImage } from "../testing/images.js";
import { createRegistryStorage, type RegistryStorage } from "./index.js";

const HOUR = 3_600_000;
const scratch = await mkdtemp(join(tmpdir(), "berth-gc-crash-"));
after(() => rm(scratch, { recursive: true, force: true }));

/** Sets the modTime of every file and directory below `dir` to two hours ago. */
async function age(dir: string): Promise<void> {
  const old = new Date(Date.now() - 2 * HOUR);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await age(path);
    await utimes(path, old, old);
  }
}

/** What a crash may leave of the refresh records: `gone`, or their modTime from before. */
async function crash(root: string, records: "gone" | "old"): Promise<void> {
  const dir = join(root, "berth", "gc", "refreshed");
  if (records === "gone") await rm(dir, { recursive: true, force: true });
  else await age(dir);
}

async function registry(name: string): Promise<{ root: string; storage: RegistryStorage }> {
  const root = join(scratch, name);
  const driver = await createDriver("filesystem", { rootdirectory: root });
  return { root, storage: createRegistryStorage(driver, { gcDelayMs: HOUR, deleteEnabled: true }) };
}

describe("a crash that undoes the refresh records, then a collection", () => {
  it("keeps a blob whose upload was acknowledged, though its data was old", async () => {
    const { root, storage } = await registry("upload");
    const app = storage.repository("crash/app");
    const blob = content("application/octet-stream", Buffer.from("layer bytes ".repeat(40)));
    await pushBlob(app, blob);
    await age(root);
    // The same bytes again: the data is found in place (old), the layer link is rewritten.
    await pushBlob(app, blob);
    await crash(root, "old");
    const result = await storage.garbageCollect({ delayMs: HOUR });
    assert.deepEqual(result.deletedBlobs, []);
    assert.equal((await app.blobs.stat(blob.digest)).size, blob.size);
    // Not kept for some other reason: once all of it is old, the unreferenced blob goes.
    await age(root);
    assert.deepEqual((await storage.garbageCollect({ delayMs: HOUR })).deletedBlobs, [blob.digest]);
  });

  it("keeps a blob mounted again into a repository whose link to it was old", async () => {
    const { root, storage } = await registry("mount");
    const from = storage.repository("crash/from");
    const to = storage.repository("crash/to");
    const blob = content("application/octet-stream", Buffer.from("mounted bytes ".repeat(40)));
    await pushBlob(from, blob);
    await to.blobs.mount("crash/from", blob.digest);
    await age(root);
    await to.blobs.mount("crash/from", blob.digest);
    await crash(root, "gone");
    const result = await storage.garbageCollect({ delayMs: HOUR });
    assert.deepEqual(result.deletedBlobs, []);
    assert.equal((await to.blobs.stat(blob.digest)).size, blob.size);
    await age(root);
    assert.deepEqual((await storage.garbageCollect({ delayMs: HOUR })).deletedBlobs, [blob.digest]);
  });

  it("keeps an untagged manifest PUT again, and its blobs, with untagged collection on", async () => {
    const { root, storage } = await registry("manifest");
    const app = storage.repository("crash/app");
    const image = buildImage({ layers: 2, layerSize: 256 });
    await pushImage(app, image);
    await age(root);
    await app.manifests.put(image.manifest.bytes, MediaType.OciManifest);
    await crash(root, "gone");
    const kept = await storage.garbageCollect({ delayMs: HOUR, deleteUntagged: true });
    assert.deepEqual(kept.deletedManifests, []);
    assert.deepEqual(kept.deletedBlobs, []);
    assert.equal((await app.manifests.get(image.manifest.digest)).digest, image.manifest.digest);
    for (const blob of [...image.layers, image.config]) await app.blobs.stat(blob.digest);
    await age(root);
    const collected = await storage.garbageCollect({ delayMs: HOUR, deleteUntagged: true });
    assert.deepEqual(collected.deletedManifests, [
      { repository: "crash/app", digest: image.manifest.digest },
    ]);
  });
});
