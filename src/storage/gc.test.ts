// Garbage collection over every test driver: tagged images stay whole, orphans go, and with
// deleteUntagged untagged manifests go while index children and referrers of kept ones stay.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { buffer } from "node:stream/consumers";
import { describe, it } from "node:test";
import {
  buildArtifact,
  buildImage,
  buildIndex,
  content,
  MediaType,
  pushBlob,
  pushImage,
  pushIndex,
} from "../testing/images.js";
import {
  rejectsWith,
  exists,
  ROOT,
  STORAGE_TEST_DRIVERS,
  createTestDriver,
} from "../testing/storage-drivers.js";
import { createRegistryStorage, RegistryErrorCode } from "./index.js";

describe("garbage collection", () => {
  for (const driverName of STORAGE_TEST_DRIVERS) {
    it(`keeps every tagged image whole and removes orphans, over ${driverName}`, async () => {
      const test = await createTestDriver(driverName);
      try {
        const reg = createRegistryStorage(test.driver, { deleteEnabled: true });
        const app = reg.repository("gc/app");
        const tagged = buildImage();
        await pushImage(app, tagged, "v1");
        const index = buildIndex();
        await pushIndex(app, index, "multi");
        const untagged = buildImage();
        await pushImage(app, untagged);
        const deleted = buildImage();
        await pushImage(app, deleted, "gone");
        await app.manifests.delete(deleted.manifest.digest);
        const signature = buildArtifact({
          artifactType: "application/x-sig",
          subject: tagged.manifest,
        });
        for (const blob of signature.blobs) await pushBlob(app, blob);
        await app.manifests.put(signature.manifest.bytes, MediaType.OciManifest);
        const orphan = content("application/octet-stream", randomBytes(100));
        await pushBlob(reg.repository("gc/other"), orphan);
        // A blob shared with a kept image survives, even in a repository that lost its manifest.
        await pushBlob(reg.repository("gc/other"), tagged.layers[0]!);

        const lines: string[] = [];
        const dry = await reg.garbageCollect({ dryRun: true, log: (line) => lines.push(line) });
        assert.ok(lines.length > 0);
        const doomed = [deleted.manifest, deleted.config, ...deleted.layers, orphan]
          .map((c) => c.digest)
          .sort();
        assert.deepEqual([...dry.deletedBlobs].sort(), doomed);
        assert.deepEqual(dry.deletedManifests, []);
        assert.equal((await reg.repository("gc/other").blobs.stat(orphan.digest)).size, 100);

        const result = await reg.garbageCollect();
        assert.deepEqual([...result.deletedBlobs].sort(), doomed);
        await assert.rejects(
          reg.repository("gc/other").blobs.stat(orphan.digest),
          rejectsWith(RegistryErrorCode.BlobUnknown),
        );
        assert.equal(
          await exists(
            test.driver,
            `${ROOT}/repositories/gc/other/_layers/sha256/${orphan.digest.slice(7)}`,
          ),
          false,
        );
        for (const image of [tagged, untagged, ...index.images]) {
          assert.deepEqual(
            (await app.manifests.get(image.manifest.digest)).content,
            image.manifest.bytes,
          );
          for (const blob of [image.config, ...image.layers]) {
            assert.deepEqual(await buffer(await app.blobs.reader(blob.digest)), blob.bytes);
          }
        }
        assert.equal(
          (await reg.repository("gc/other").blobs.stat(tagged.layers[0]!.digest)).size,
          tagged.layers[0]!.size,
        );

        // deleteUntagged: the untagged image goes; index children and referrers of kept ones stay.
        const second = await reg.garbageCollect({ deleteUntagged: true });
        assert.deepEqual(second.deletedManifests, [
          { repository: "gc/app", digest: untagged.manifest.digest },
        ]);
        assert.deepEqual(
          [...second.deletedBlobs].sort(),
          [untagged.manifest, untagged.config, ...untagged.layers].map((c) => c.digest).sort(),
        );
        assert.equal(await app.manifests.exists(untagged.manifest.digest), false);
        for (const image of index.images)
          assert.equal(await app.manifests.exists(image.manifest.digest), true);
        assert.equal((await app.referrers(tagged.manifest.digest)).length, 1);
        assert.equal((await app.blobs.stat(tagged.config.digest)).size, tagged.config.size);
        const third = await reg.garbageCollect({ deleteUntagged: true });
        assert.deepEqual(third.deletedBlobs, []);
      } finally {
        await test.cleanup();
      }
    });
  }
});
