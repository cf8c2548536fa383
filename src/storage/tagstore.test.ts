// Tags over every test driver: tag, untag, look up, and delete manifests with their tags.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildImage, pushImage, sha256 } from "../testing/images.js";
import { rejectsWith, STORAGE_TEST_DRIVERS, useStorage } from "../testing/storage-drivers.js";
import { RegistryErrorCode } from "./index.js";

for (const driverName of STORAGE_TEST_DRIVERS) {
  describe(`tags over ${driverName}`, () => {
    const storage = useStorage(driverName);
    const { registry } = storage;

    it("tags, untags, looks up and deletes manifests with their tags", async () => {
      const repo = registry().repository("tags");
      const image = buildImage();
      await pushImage(repo, image, "latest");
      await repo.tags.tag("v1", image.manifest.digest);
      await repo.tags.tag("v1.0", image.manifest.digest);
      const other = buildImage();
      await pushImage(repo, other, "other");
      assert.deepEqual(await repo.tags.lookup(image.manifest.digest), ["latest", "v1", "v1.0"]);
      await assert.rejects(
        repo.tags.tag("v2", sha256(Buffer.from("x"))),
        rejectsWith(RegistryErrorCode.ManifestUnknown),
      );
      await assert.rejects(
        repo.tags.tag(".bad", image.manifest.digest),
        rejectsWith(RegistryErrorCode.TagInvalid),
      );
      await assert.rejects(
        repo.tags.resolve("missing"),
        rejectsWith(RegistryErrorCode.ManifestUnknown),
      );

      await repo.tags.untag("v1.0");
      await assert.rejects(repo.tags.untag("v1.0"), rejectsWith(RegistryErrorCode.ManifestUnknown));
      await repo.tags.tag("latest", other.manifest.digest);
      assert.deepEqual(await repo.tags.lookup(image.manifest.digest), ["v1"]);

      await assert.rejects(
        registry({}).repository("tags").manifests.delete(image.manifest.digest),
        rejectsWith(RegistryErrorCode.Unsupported),
      );
      await repo.manifests.delete(image.manifest.digest);
      assert.equal(await repo.manifests.exists(image.manifest.digest), false);
      assert.deepEqual(await repo.tags.list(), ["latest", "other"]);
      await assert.rejects(
        repo.manifests.delete(image.manifest.digest),
        rejectsWith(RegistryErrorCode.ManifestUnknown),
      );
      await assert.rejects(
        registry().repository("tags/none").tags.list(),
        rejectsWith(RegistryErrorCode.NameUnknown),
      );
    });
  });
}
