// Registry-wide rules over every test driver: read-only mode refuses every mutation, invalid
// repository names are refused.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildImage, MediaType, pushImage } from "../testing/images.js";
import {
  chunks,
  rejectsWith,
  STORAGE_TEST_DRIVERS,
  useStorage,
} from "../testing/storage-drivers.js";
import { RegistryErrorCode } from "./index.js";

for (const driverName of STORAGE_TEST_DRIVERS) {
  describe(`the registry over ${driverName}`, () => {
    const storage = useStorage(driverName);
    const { registry } = storage;

    it("refuses every mutation in read-only mode", async () => {
      const writable = registry().repository("readonly");
      const image = buildImage();
      await pushImage(writable, image, "v1");
      const pending = await writable.blobs.startUpload();
      const repo = registry({ readOnly: true, deleteEnabled: true }).repository("readonly");
      const attempts: (() => Promise<unknown>)[] = [
        () => repo.blobs.startUpload(),
        () => repo.blobs.delete(image.config.digest),
        () => repo.blobs.mount("readonly", image.config.digest),
        () => repo.manifests.put(image.manifest.bytes, MediaType.OciManifest),
        () => repo.manifests.delete(image.manifest.digest),
        () => repo.tags.tag("v2", image.manifest.digest),
        () => repo.tags.untag("v1"),
        () =>
          repo.blobs
            .resumeUpload(pending.id)
            .then((upload) => upload.append(chunks(Buffer.from("x")))),
        () =>
          repo.blobs.resumeUpload(pending.id).then((upload) => upload.finish(image.config.digest)),
        () => repo.blobs.resumeUpload(pending.id).then((upload) => upload.cancel()),
        () => registry({ readOnly: true }).garbageCollect(),
        () => registry({ readOnly: true }).purgeUploads(0),
      ];
      for (const attempt of attempts) {
        await assert.rejects(attempt(), (error) => {
          rejectsWith(RegistryErrorCode.Unsupported)(error);
          assert.match((error as Error).message, /read-only/);
          return true;
        });
      }
      assert.equal(await repo.tags.resolve("v1"), image.manifest.digest);
      assert.equal((await repo.blobs.stat(image.config.digest)).size, image.config.size);
    });

    it("rejects invalid repository names", () => {
      for (const name of ["", "UPPER", "a//b", "-a", "a/", "a..b", "_a", "a/_b", "x".repeat(256)]) {
        assert.throws(
          () => registry().repository(name),
          rejectsWith(RegistryErrorCode.NameInvalid),
        );
      }
    });
  });
}
