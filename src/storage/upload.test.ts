// Uploads over every test driver: chunked and resumed uploads with distribution's layout, re-hashing
// after a restart or another replica, sha512 and empty blobs, failures that keep what arrived,
// wrong digests and sizes, concurrent appends, cancelling.

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, it } from "node:test";
import { sha256 } from "../testing/images.js";
import {
  chunks,
  rejectsWith,
  text,
  exists,
  ROOT,
  STORAGE_TEST_DRIVERS,
  useStorage,
} from "../testing/storage-drivers.js";
import type { DriverBase } from "../driver/index.js";
import type { FilesystemDriver } from "../driver/filesystem/index.js";
import { digestOf, RegistryErrorCode } from "./index.js";
import { newUploadId, UNSTARTED_FOR_MS } from "./upload.js";

/** A request body that delivers `sent`, then fails as a client going away does. */
async function* cutAfter(sent: Buffer): AsyncGenerator<Uint8Array> {
  yield sent;
  throw new Error("client went away");
}

for (const driverName of STORAGE_TEST_DRIVERS) {
  describe(`uploads over ${driverName}`, () => {
    const storage = useStorage(driverName);
    const { registry } = storage;

    it("streams a chunked upload into the blob store with distribution's layout", async () => {
      const repo = registry().repository("layout/app");
      const bytes = randomBytes(300_000);
      const digest = sha256(bytes);
      const hex = digest.slice("sha256:".length);
      const before = Date.now();
      const upload = await repo.blobs.startUpload();
      // A UUIDv7 whose first 48 bits are when it started; nothing is stored before the first bytes.
      const idTime = Number.parseInt(upload.id.replaceAll("-", "").slice(0, 12), 16);
      assert.match(
        upload.id,
        /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      assert.ok(idTime >= before && idTime <= Date.now(), `${idTime} from ${upload.id}`);
      assert.equal(
        await exists(storage.driver, `${ROOT}/repositories/layout/app/_uploads/${upload.id}`),
        false,
      );
      assert.equal(
        await upload.append(chunks(bytes.subarray(0, 1000), bytes.subarray(1000, 100_000))),
        100_000,
      );
      const startedAt = await text(
        storage.driver,
        `${ROOT}/repositories/layout/app/_uploads/${upload.id}/startedat`,
      );
      assert.match(startedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(Date.parse(startedAt), idTime - (idTime % 1000));
      const resumed = await repo.blobs.resumeUpload(upload.id);
      assert.equal(resumed.size, 100_000);
      assert.equal(await resumed.append(Readable.from([bytes.subarray(100_000)])), bytes.length);
      assert.deepEqual(await resumed.finish(digest, bytes.length), { digest, size: bytes.length });

      assert.deepEqual(
        Buffer.from(
          await storage.driver.getContent(`${ROOT}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`),
        ),
        bytes,
      );
      assert.equal(
        await text(storage.driver, `${ROOT}/repositories/layout/app/_layers/sha256/${hex}/link`),
        digest,
      );
      assert.equal(
        await exists(storage.driver, `${ROOT}/repositories/layout/app/_uploads/${upload.id}`),
        false,
      );
      assert.deepEqual(await repo.blobs.stat(digest), { digest, size: bytes.length });
      assert.deepEqual(
        await buffer(await repo.blobs.reader(digest, 299_990)),
        bytes.subarray(299_990),
      );
      await assert.rejects(
        repo.blobs.resumeUpload(upload.id),
        rejectsWith(RegistryErrorCode.BlobUploadUnknown),
      );
    });

    it("resumes an upload in a new process from stored data, re-hashing it", async () => {
      const bytes = randomBytes(50_000);
      const first = await registry().repository("restart").blobs.startUpload();
      await first.append(chunks(bytes.subarray(0, 20_000)));
      // A second registry over the same storage has no hash state: as after a restart.
      const second = await registry().repository("restart").blobs.resumeUpload(first.id);
      assert.equal(second.size, 20_000);
      await second.append(chunks(bytes.subarray(20_000)));
      assert.deepEqual(await second.finish(sha256(bytes)), { digest: sha256(bytes), size: 50_000 });
    });

    it("re-hashes when another replica appended to the upload", async () => {
      const bytes = randomBytes(50_000);
      const replicaA = registry().repository("replicas");
      const upload = await replicaA.blobs.startUpload();
      await upload.append(chunks(bytes.subarray(0, 20_000)));
      const onB = await registry().repository("replicas").blobs.resumeUpload(upload.id);
      await onB.append(chunks(bytes.subarray(20_000)));
      // A resumes from its own state, which cannot know of B's append; appending through it is
      // refused rather than written at the wrong offset, and A then reads the real size.
      const stale = await replicaA.blobs.resumeUpload(upload.id);
      assert.equal(stale.size, 20_000);
      await assert.rejects(
        stale.append(chunks(bytes.subarray(20_000))),
        rejectsWith(RegistryErrorCode.RangeInvalid),
      );
      const onA = await replicaA.blobs.resumeUpload(upload.id);
      assert.equal(onA.size, 50_000);
      // A's running hash covers 20000 bytes of 50000: it must not be used.
      assert.deepEqual(await onA.finish(sha256(bytes)), { digest: sha256(bytes), size: 50_000 });
    });

    it("accepts sha512 digests and finishes empty uploads", async () => {
      const repo = registry().repository("algorithms");
      const bytes = randomBytes(1000);
      const sha512 = digestOf(bytes, "sha512");
      const upload = await repo.blobs.startUpload();
      await upload.append(chunks(bytes));
      assert.deepEqual(await upload.finish(sha512), { digest: sha512, size: 1000 });
      assert.equal((await repo.blobs.stat(sha512)).size, 1000);
      const hex = sha512.slice("sha512:".length);
      assert.ok(
        await exists(storage.driver, `${ROOT}/blobs/sha512/${hex.slice(0, 2)}/${hex}/data`),
      );

      const empty = await repo.blobs.startUpload();
      assert.deepEqual(await empty.finish(sha256(Buffer.alloc(0)), 0), {
        digest: sha256(Buffer.alloc(0)),
        size: 0,
      });
    });

    it("creates the data on the first append: an upload never appended to is the empty blob", async () => {
      const empty = Buffer.alloc(0);
      const repo = registry().repository("lazy/data");
      const upload = await repo.blobs.startUpload();
      assert.equal(
        await exists(storage.driver, `${ROOT}/repositories/lazy/data/_uploads/${upload.id}/data`),
        false,
      );
      // A new process (no running hash) resumes it at 0 and finishes it as the empty blob.
      const restarted = await registry().repository("lazy/data").blobs.resumeUpload(upload.id);
      assert.equal(restarted.size, 0);
      assert.deepEqual(await restarted.finish(sha256(empty), 0), {
        digest: sha256(empty),
        size: 0,
      });
      assert.equal((await repo.blobs.stat(sha256(empty))).size, 0);

      // Started here, first bytes appended after a restart, finished with a last chunk.
      const bytes = randomBytes(10_000);
      const second = await repo.blobs.startUpload();
      const later = registry().repository("lazy/data");
      assert.equal(
        await (await later.blobs.resumeUpload(second.id)).append(chunks(bytes.subarray(0, 4000))),
        4000,
      );
      const last = await later.blobs.resumeUpload(second.id);
      assert.deepEqual(await last.finish(sha256(bytes), 10_000, chunks(bytes.subarray(4000))), {
        digest: sha256(bytes),
        size: 10_000,
      });
      assert.deepEqual(await buffer(await repo.blobs.reader(sha256(bytes))), bytes);
    });

    it("keeps a last chunk that fails on finish, resumable", async () => {
      const bytes = randomBytes(30_000);
      const repo = registry().repository("finish/failing");
      const upload = await repo.blobs.startUpload();
      const failing = cutAfter(bytes.subarray(0, 10_000));
      await assert.rejects(upload.finish(sha256(bytes), undefined, failing), /client went away/);
      const resumed = await registry().repository("finish/failing").blobs.resumeUpload(upload.id);
      assert.equal(resumed.size, 10_000);
      assert.deepEqual(
        await resumed.finish(sha256(bytes), 30_000, chunks(bytes.subarray(10_000))),
        {
          digest: sha256(bytes),
          size: 30_000,
        },
      );
    });

    // Only a writer that publishes into blobs/ (commitToIfAbsent) has the link written beside it.
    if (driverName === "filesystem") {
      it("keeps a last chunk whose blob fails to publish, resumable; the link written beside it finds no blob", async (t) => {
        const inner = (storage.driver as DriverBase).inner as FilesystemDriver;
        t.mock.method(inner, "publishAt", async () => {
          throw Object.assign(new Error("the disk failed"), { code: "EIO" });
        });
        const bytes = randomBytes(6000);
        const digest = sha256(bytes);
        const repo = registry().repository("publish/failing");
        const upload = await repo.blobs.startUpload();
        await assert.rejects(upload.finish(digest, 6000, chunks(bytes)));
        await assert.rejects(repo.blobs.stat(digest), rejectsWith(RegistryErrorCode.BlobUnknown));
        t.mock.restoreAll();
        const resumed = await registry()
          .repository("publish/failing")
          .blobs.resumeUpload(upload.id);
        assert.equal(resumed.size, 6000);
        assert.deepEqual(await resumed.finish(digest, 6000), { digest, size: 6000 });
        assert.deepEqual((await repo.blobs.stat(digest)).size, 6000);
      });
    }

    // Only the filesystem driver keeps a new writer's bytes where they will be published.
    if (driverName === "filesystem") {
      it("a PUT carrying the whole blob writes it where the blob goes; cut short, it stays resumable", async () => {
        const root = storage.rootDirectory!;
        const bytes = randomBytes(20_000);
        const digest = sha256(bytes);
        const hex = digest.slice("sha256:".length);
        const blobDirectory = join(root, ROOT, "blobs/sha256", hex.slice(0, 2), hex);
        const repo = registry().repository("staged/whole");
        const upload = await repo.blobs.startUpload();
        const uploads = join(root, ROOT, "repositories/staged/whole/_uploads");
        let seen: string[] = [];
        async function* body(): AsyncGenerator<Uint8Array> {
          yield bytes.subarray(0, 10_000);
          // Half-way: the bytes are beside the blob's name, and the upload has no directory.
          seen = await readdir(blobDirectory);
          assert.equal(existsSync(uploads), false);
          yield bytes.subarray(10_000);
        }
        assert.deepEqual(await upload.finish(digest, 20_000, body()), { digest, size: 20_000 });
        assert.equal(seen.length, 1);
        assert.match(seen[0]!, /^data~tmp-/);
        assert.deepEqual(await readdir(blobDirectory), ["data"]);
        assert.equal(existsSync(uploads), false);

        // Cut short: the bytes that arrived are the upload's, resumable; nothing stays beside
        // the blob's name.
        const other = randomBytes(20_000);
        const otherHex = sha256(other).slice("sha256:".length);
        const cut = await repo.blobs.startUpload();
        await assert.rejects(cut.finish(sha256(other), 20_000, cutAfter(other.subarray(0, 8000))));
        assert.equal(
          existsSync(join(root, ROOT, "blobs/sha256", otherHex.slice(0, 2), otherHex)),
          false,
        );
        const resumed = await registry().repository("staged/whole").blobs.resumeUpload(cut.id);
        assert.equal(resumed.size, 8000);
        assert.deepEqual(
          await resumed.finish(sha256(other), 20_000, chunks(other.subarray(8000))),
          {
            digest: sha256(other),
            size: 20_000,
          },
        );
      });
    }

    it("refuses a wrong digest or size, leaving no blob and no link", async () => {
      const repo = registry().repository("wrong");
      const bytes = randomBytes(4096);
      const other = sha256(randomBytes(10));
      let upload = await repo.blobs.startUpload();
      await upload.append(chunks(bytes));
      await assert.rejects(upload.finish(other), rejectsWith(RegistryErrorCode.DigestInvalid));
      await assert.rejects(repo.blobs.stat(other), rejectsWith(RegistryErrorCode.BlobUnknown));
      await assert.rejects(
        repo.blobs.resumeUpload(upload.id),
        rejectsWith(RegistryErrorCode.BlobUploadUnknown),
      );
      const hex = other.slice(7);
      assert.equal(
        await exists(storage.driver, `${ROOT}/blobs/sha256/${hex.slice(0, 2)}/${hex}`),
        false,
      );
      assert.equal(
        await exists(storage.driver, `${ROOT}/repositories/wrong/_layers/sha256/${hex}`),
        false,
      );

      upload = await repo.blobs.startUpload();
      await upload.append(chunks(bytes));
      await assert.rejects(
        upload.finish(sha256(bytes), 4095),
        rejectsWith(RegistryErrorCode.SizeInvalid),
      );
      await assert.rejects(
        repo.blobs.stat(sha256(bytes)),
        rejectsWith(RegistryErrorCode.BlobUnknown),
      );

      upload = await repo.blobs.startUpload();
      for (const bad of [
        "sha256:abc",
        "md5:0123",
        "sha384:" + "a".repeat(96),
        "SHA256:" + hex,
        "",
      ]) {
        await assert.rejects(upload.finish(bad), rejectsWith(RegistryErrorCode.DigestInvalid));
      }
      // A malformed digest does not end the upload: the client may retry.
      await upload.append(chunks(bytes));
      await upload.finish(sha256(bytes));
    });

    it("finishes with the last chunk: a wrong digest or size stores nothing, a stored blob stays one", async () => {
      const driver = storage.driver as DriverBase;
      const calls = () => ({
        moves: driver.metrics.move?.calls ?? 0,
        commits: driver.metrics["writer.commitTo"]?.calls ?? 0,
        ifAbsent: driver.metrics["writer.commitToIfAbsent"]?.calls ?? 0,
      });
      const before = calls();
      const repo = registry().repository("last/chunk");
      const bytes = randomBytes(5000);
      const digest = sha256(bytes);
      const hex = digest.slice("sha256:".length);
      const blobDirectory = `${ROOT}/blobs/sha256/${hex.slice(0, 2)}/${hex}`;
      for (const [wrong, size, code] of [
        [sha256(randomBytes(10)), undefined, RegistryErrorCode.DigestInvalid],
        [digest, 4999, RegistryErrorCode.SizeInvalid],
      ] as const) {
        const upload = await repo.blobs.startUpload();
        await assert.rejects(upload.finish(wrong, size, chunks(bytes)), rejectsWith(code));
        assert.equal(await exists(driver, blobDirectory), false);
        assert.equal(await exists(driver, `${ROOT}/repositories/last/chunk/_uploads`), false);
      }
      const inodes: number[] = [];
      for (const name of ["last/chunk", "last/again"]) {
        const upload = await registry().repository(name).blobs.startUpload();
        await upload.append(chunks(bytes.subarray(0, 1000)));
        assert.deepEqual(await upload.finish(digest, 5000, chunks(bytes.subarray(1000))), {
          digest,
          size: 5000,
        });
        assert.equal(
          await text(driver, `${ROOT}/repositories/${name}/_layers/sha256/${hex}/link`),
          digest,
        );
        assert.equal(await exists(driver, `${ROOT}/repositories/${name}/_uploads`), false);
        if (storage.rootDirectory !== undefined) {
          inodes.push((await stat(join(storage.rootDirectory, blobDirectory, "data"))).ino);
        }
      }
      // The second upload found the blob stored: the stored file stays, not replaced by its copy.
      if (inodes.length > 0) assert.equal(inodes[1], inodes[0]);
      assert.deepEqual(Buffer.from(await driver.getContent(`${blobDirectory}/data`)), bytes);
      assert.deepEqual(await driver.list(blobDirectory), [`${blobDirectory}/data`]);
      // The filesystem's writers publish straight into blobs/ (commitToIfAbsent): no move, and
      // the second upload's writer found the blob there without a lookup of its own.
      if (driverName === "filesystem") {
        assert.deepEqual(calls(), {
          moves: before.moves,
          commits: before.commits,
          ifAbsent: before.ifAbsent + 2,
        });
        const files = await readdir(storage.rootDirectory!, { recursive: true });
        assert.deepEqual(
          files.filter((file) => file.includes("~")),
          [],
          "files of the driver's own left behind",
        );
      }
    });

    it("a PATCH opens a new upload's writer without a resume that fails; a PUT without a body then publishes it without a move", async () => {
      const driver = storage.driver as DriverBase;
      const count = (method: string) => ({
        calls: driver.metrics[method]?.calls ?? 0,
        errors: driver.metrics[method]?.errors ?? 0,
      });
      const repo = registry().repository("patch/then/put");
      const bytes = randomBytes(20_000);
      const digest = sha256(bytes);
      const upload = await repo.blobs.startUpload();
      const writers = count("writer");
      await upload.append(chunks(bytes));
      const opened = count("writer");
      // Drivers that ignore newIfMissing fail a resume first, then start a writer anew.
      if (driverName === "filesystem") {
        assert.deepEqual(opened, { calls: writers.calls + 1, errors: writers.errors });
      }
      const startedAt = `${ROOT}/repositories/patch/then/put/_uploads/${upload.id}/startedat`;
      assert.match(await text(driver, startedAt), /^\d{4}-/, "startedat written with the bytes");
      const moves = count("move");
      assert.deepEqual(await upload.finish(digest, bytes.length), { digest, size: bytes.length });
      if (driverName === "filesystem") {
        assert.deepEqual(count("move"), moves, "published from the running hash, not moved");
      }
      const hex = digest.slice("sha256:".length);
      const data = `${ROOT}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
      assert.deepEqual(Buffer.from(await driver.getContent(data)), bytes);
      assert.equal(await exists(driver, `${ROOT}/repositories/patch/then/put/_uploads`), false);
    });

    it("keeps what arrived when the client goes away, and the upload stays resumable", async () => {
      const repo = registry().repository("disconnect");
      const bytes = randomBytes(30_000);
      const upload = await repo.blobs.startUpload();
      const failing = cutAfter(bytes.subarray(0, 10_000));
      await assert.rejects(upload.append(failing), /client went away/);
      assert.equal(upload.size, 10_000);
      const resumed = await repo.blobs.resumeUpload(upload.id);
      assert.equal(resumed.size, 10_000);
      await resumed.append(chunks(bytes.subarray(10_000)));
      await resumed.finish(sha256(bytes), bytes.length);
      assert.deepEqual(await buffer(await repo.blobs.reader(sha256(bytes))), bytes);
    });

    it("serializes concurrent appends to one upload", async () => {
      const repo = registry().repository("concurrent");
      const a = randomBytes(20_000);
      const b = randomBytes(20_000);
      const upload = await repo.blobs.startUpload();
      await Promise.all([
        upload.append(chunks(a.subarray(0, 10_000), a.subarray(10_000))),
        upload.append(chunks(b)),
      ]);
      await upload.finish(sha256(Buffer.concat([a, b])), 40_000);
    });

    it("cancels an upload, removing everything it wrote", async () => {
      const repo = registry().repository("cancel");
      const upload = await repo.blobs.startUpload();
      await upload.append(chunks(randomBytes(100)));
      await upload.cancel();
      assert.equal(
        await exists(storage.driver, `${ROOT}/repositories/cancel/_uploads/${upload.id}`),
        false,
      );
      await assert.rejects(
        repo.blobs.resumeUpload(upload.id),
        rejectsWith(RegistryErrorCode.BlobUploadUnknown),
      );
      await assert.rejects(upload.cancel(), rejectsWith(RegistryErrorCode.BlobUploadUnknown));
      await assert.rejects(
        repo.blobs.resumeUpload("../../x"),
        rejectsWith(RegistryErrorCode.BlobUploadUnknown),
      );
    });

    it("stores nothing until the first bytes: any replica knows the upload by its id", async () => {
      const bytes = randomBytes(50_000);
      const replicaA = registry().repository("unstarted/replicas");
      const upload = await replicaA.blobs.startUpload();
      const directory = `${ROOT}/repositories/unstarted/replicas/_uploads/${upload.id}`;
      assert.equal(await exists(storage.driver, directory), false);
      // Replica B (or A after a restart) has no state of it: the id says it stored nothing yet.
      const onB = await registry().repository("unstarted/replicas").blobs.resumeUpload(upload.id);
      assert.equal(onB.size, 0);
      assert.equal(onB.startedAt.getTime(), upload.startedAt.getTime());
      assert.equal(await onB.append(chunks(bytes.subarray(0, 20_000))), 20_000);
      assert.match(await text(storage.driver, `${directory}/startedat`), /Z$/);
      // A's state still says 0: its append is refused at the real offset, as for any upload.
      await assert.rejects(
        (await replicaA.blobs.resumeUpload(upload.id)).append(chunks(bytes)),
        rejectsWith(RegistryErrorCode.RangeInvalid),
      );
      const onA = await replicaA.blobs.resumeUpload(upload.id);
      assert.equal(onA.size, 20_000);
      assert.deepEqual(await onA.finish(sha256(bytes), undefined, chunks(bytes.subarray(20_000))), {
        digest: sha256(bytes),
        size: 50_000,
      });
      assert.equal(await exists(storage.driver, directory), false);
    });

    it("finishes an upload that stored nothing in one go, and leaves no trace of it", async () => {
      const repo = registry().repository("unstarted/whole");
      const bytes = randomBytes(4096);
      const upload = await repo.blobs.startUpload();
      assert.deepEqual(await upload.finish(sha256(bytes), 4096, chunks(bytes)), {
        digest: sha256(bytes),
        size: 4096,
      });
      assert.deepEqual(await buffer(await repo.blobs.reader(sha256(bytes))), bytes);
      assert.equal(
        await exists(storage.driver, `${ROOT}/repositories/unstarted/whole/_uploads/${upload.id}`),
        false,
      );
      if (driverName === "filesystem") {
        const left = await readdir(
          join(storage.rootDirectory!, "docker/registry/v2/repositories/unstarted/whole"),
        );
        // Its bytes were written where the blob went: no directory of the upload's was made.
        assert.deepEqual(left, ["_layers"]);
      }
      // Ended here: its id is unknown in this process at once, finished or cancelled.
      await assert.rejects(
        repo.blobs.resumeUpload(upload.id),
        rejectsWith(RegistryErrorCode.BlobUploadUnknown),
      );
      const cancelled = await repo.blobs.startUpload();
      await (await repo.blobs.resumeUpload(cancelled.id)).cancel();
      await assert.rejects(
        repo.blobs.resumeUpload(cancelled.id),
        rejectsWith(RegistryErrorCode.BlobUploadUnknown),
      );
    });

    it("writes startedat when a last chunk is cut short, so the upload can be found", async () => {
      const repo = registry().repository("unstarted/cut");
      const bytes = randomBytes(30_000);
      const upload = await repo.blobs.startUpload();
      const failing = cutAfter(bytes.subarray(0, 10_000));
      await assert.rejects(upload.finish(sha256(bytes), undefined, failing), /client went away/);
      const directory = `${ROOT}/repositories/unstarted/cut/_uploads/${upload.id}`;
      assert.match(await text(storage.driver, `${directory}/startedat`), /Z$/);
      assert.deepEqual(
        (await storage.driver.list(`${ROOT}/repositories/unstarted/cut/_uploads`)).map((path) =>
          path.split("/").pop(),
        ),
        [upload.id],
      );
    });

    it("knows no id that is not Berth's, or that names a time long past or ahead", async () => {
      const repo = registry().repository("unstarted/ids");
      const v7 = (time: number): string => newUploadId(time);
      for (const id of [
        randomUUID(),
        v7(Date.now() - UNSTARTED_FOR_MS - 60_000),
        v7(Date.now() + 10 * 60_000),
        v7(Date.now()).toUpperCase(),
      ]) {
        await assert.rejects(
          repo.blobs.resumeUpload(id),
          rejectsWith(RegistryErrorCode.BlobUploadUnknown),
          id,
        );
      }
      const young = v7(Date.now() - UNSTARTED_FOR_MS + 60_000);
      assert.equal((await repo.blobs.resumeUpload(young)).size, 0);
    });
  });
}
