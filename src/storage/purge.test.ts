// Purging abandoned uploads over every test driver.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { exists, ROOT, STORAGE_TEST_DRIVERS, useStorage } from "../testing/storage-drivers.js";

for (const driverName of STORAGE_TEST_DRIVERS) {
  describe(`upload purging over ${driverName}`, () => {
    const storage = useStorage(driverName);
    const { registry } = storage;

    it("purges uploads older than an age", async () => {
      const reg = registry();
      const repo = reg.repository("purge/me");
      const old = await repo.blobs.startUpload();
      const hex = old.id;
      await storage.driver.putContent(
        `${ROOT}/repositories/purge/me/_uploads/${hex}/startedat`,
        Buffer.from("2001-01-01T00:00:00Z"),
      );
      const fresh = await repo.blobs.startUpload();
      assert.deepEqual(await reg.purgeUploads(3_600_000, true), [old.id]);
      assert.ok(await exists(storage.driver, `${ROOT}/repositories/purge/me/_uploads/${old.id}`));
      assert.deepEqual(await reg.purgeUploads(3_600_000), [old.id]);
      assert.equal(
        await exists(storage.driver, `${ROOT}/repositories/purge/me/_uploads/${old.id}`),
        false,
      );
      assert.equal((await repo.blobs.resumeUpload(fresh.id)).size, 0);
    });
  });
}
