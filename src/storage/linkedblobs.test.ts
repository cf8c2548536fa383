// A repository's blobs over every test driver: stored once, mounted across repositories, unlinked
// on delete, and unknown at once after a delete.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { buildImage, content, pushBlob, pushImage, sha256 } from "../testing/images.js";
import { rejectsWith, STORAGE_TEST_DRIVERS, useStorage } from "../testing/storage-drivers.js";
import { RegistryErrorCode } from "./index.js";

for (const driverName of STORAGE_TEST_DRIVERS) {
  describe(`repository blobs over ${driverName}`, () => {
    const storage = useStorage(driverName);
    const { registry } = storage;

    it("forgets the links it deletes: a deleted blob or manifest is unknown at once", async () => {
      const reg = registry();
      const repo = reg.repository("forget/app");
      const image = buildImage();
      await pushImage(repo, image, "v1");
      const layer = image.layers[0]!.digest;
      // Read twice: the links are known to exist now, and answered from memory.
      for (let i = 0; i < 2; i++) {
        assert.ok((await repo.blobs.stat(layer)).size > 0);
        assert.equal(
          (await repo.manifests.get(image.manifest.digest)).digest,
          image.manifest.digest,
        );
      }
      assert.deepEqual(repo.blobs.statCached!(layer), await repo.blobs.stat(layer));
      assert.equal(repo.manifests.getCached!(image.manifest.digest)?.digest, image.manifest.digest);
      assert.equal(repo.blobs.statCached!("sha256:nothex"), undefined);
      await repo.blobs.delete(layer);
      assert.equal(repo.blobs.statCached!(layer), undefined);
      await assert.rejects(repo.blobs.stat(layer), rejectsWith(RegistryErrorCode.BlobUnknown));
      await repo.manifests.delete(image.manifest.digest);
      assert.equal(repo.manifests.getCached!(image.manifest.digest), undefined);
      await assert.rejects(
        repo.manifests.get(image.manifest.digest),
        rejectsWith(RegistryErrorCode.ManifestUnknown),
      );
      assert.equal(await repo.manifests.exists(image.manifest.digest), false);

      // Garbage collection removes the now unreferenced blobs and their links.
      const config = image.config.digest;
      assert.ok((await repo.blobs.stat(config)).size > 0);
      assert.equal(repo.blobs.statCached!(config)?.digest, config);
      await reg.garbageCollect();
      assert.equal(repo.blobs.statCached!(config), undefined);
      await assert.rejects(repo.blobs.stat(config), rejectsWith(RegistryErrorCode.BlobUnknown));
    });

    it("stores a blob once, mounts it across repositories and unlinks it on delete", async () => {
      const reg = registry();
      const blob = content("application/octet-stream", randomBytes(2048));
      await pushBlob(reg.repository("mount/source"), blob);
      await pushBlob(reg.repository("mount/other"), blob);
      const target = reg.repository("mount/target");
      await assert.rejects(
        target.blobs.stat(blob.digest),
        rejectsWith(RegistryErrorCode.BlobUnknown),
      );
      assert.deepEqual(await target.blobs.mount("mount/source", blob.digest), {
        digest: blob.digest,
        size: 2048,
      });
      assert.equal((await target.blobs.stat(blob.digest)).size, 2048);
      await assert.rejects(
        target.blobs.mount("mount/nothing", sha256(Buffer.from("x"))),
        rejectsWith(RegistryErrorCode.BlobUnknown),
      );
      await assert.rejects(
        target.blobs.mount("Bad Name", blob.digest),
        rejectsWith(RegistryErrorCode.NameInvalid),
      );

      await assert.rejects(
        registry({}).repository("mount/target").blobs.delete(blob.digest),
        rejectsWith(RegistryErrorCode.Unsupported),
      );
      await target.blobs.delete(blob.digest);
      await assert.rejects(
        target.blobs.stat(blob.digest),
        rejectsWith(RegistryErrorCode.BlobUnknown),
      );
      await assert.rejects(
        target.blobs.delete(blob.digest),
        rejectsWith(RegistryErrorCode.BlobUnknown),
      );
      // Still stored, still linked elsewhere.
      assert.equal((await reg.repository("mount/source").blobs.stat(blob.digest)).size, 2048);
      assert.equal(await reg.repository("mount/other").blobs.redirectURL(blob.digest), null);
    });
  });
}
