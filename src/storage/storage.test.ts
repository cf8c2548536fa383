// The registry storage layer over every test driver: uploads, blobs, manifests, tags, referrers,
// catalog, delete and read-only rules, upload purging and garbage collection.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { StorageDriver } from "../driver/index.js";
import {
  buildArtifact,
  buildImage,
  buildIndex,
  content,
  descriptor,
  jsonContent,
  MediaType,
  pushBlob,
  pushImage,
  pushIndex,
  sha256,
} from "../testing/images.js";
import {
  createTestDriver,
  STORAGE_TEST_DRIVERS,
  type TestDriver,
} from "../testing/storage-drivers.js";
import {
  createRegistryStorage,
  digestOf,
  isRegistryError,
  RegistryErrorCode,
  type RegistryErrorCode as Code,
  type RegistryStorageOptions,
} from "./index.js";

const ROOT = "/docker/registry/v2";

function chunks(...parts: Buffer[]): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (const part of parts) yield part;
  })();
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

function rejectsWith(code: Code): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isRegistryError(error), `expected a RegistryError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

async function text(driver: StorageDriver, path: string): Promise<string> {
  return Buffer.from(await driver.getContent(path)).toString("utf8");
}

async function exists(driver: StorageDriver, path: string): Promise<boolean> {
  try {
    await driver.stat(path);
    return true;
  } catch {
    return false;
  }
}

for (const driverName of STORAGE_TEST_DRIVERS) {
  describe(`registry storage over ${driverName}`, () => {
    let test: TestDriver;
    let driver: StorageDriver;
    const registry = (options: RegistryStorageOptions = { deleteEnabled: true }) =>
      createRegistryStorage(driver, options);

    before(async () => {
      test = await createTestDriver(driverName);
      driver = test.driver;
    });
    after(() => test.cleanup());

    it("streams a chunked upload into the blob store with distribution's layout", async () => {
      const repo = registry().repository("layout/app");
      const bytes = randomBytes(300_000);
      const digest = sha256(bytes);
      const hex = digest.slice("sha256:".length);
      const upload = await repo.blobs.startUpload();
      assert.match(
        await text(driver, `${ROOT}/repositories/layout/app/_uploads/${upload.id}/startedat`),
        /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
      );
      assert.equal(
        await upload.append(chunks(bytes.subarray(0, 1000), bytes.subarray(1000, 100_000))),
        100_000,
      );
      const resumed = await repo.blobs.resumeUpload(upload.id);
      assert.equal(resumed.size, 100_000);
      assert.equal(await resumed.append(Readable.from([bytes.subarray(100_000)])), bytes.length);
      assert.deepEqual(await resumed.finish(digest, bytes.length), { digest, size: bytes.length });

      assert.deepEqual(
        Buffer.from(await driver.getContent(`${ROOT}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`)),
        bytes,
      );
      assert.equal(
        await text(driver, `${ROOT}/repositories/layout/app/_layers/sha256/${hex}/link`),
        digest,
      );
      assert.equal(
        await exists(driver, `${ROOT}/repositories/layout/app/_uploads/${upload.id}`),
        false,
      );
      assert.deepEqual(await repo.blobs.stat(digest), { digest, size: bytes.length });
      assert.deepEqual(
        await readAll(await repo.blobs.reader(digest, 299_990)),
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
      assert.ok(await exists(driver, `${ROOT}/blobs/sha512/${hex.slice(0, 2)}/${hex}/data`));

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
        await exists(driver, `${ROOT}/repositories/lazy/data/_uploads/${upload.id}/data`),
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
      assert.deepEqual(await readAll(await repo.blobs.reader(sha256(bytes))), bytes);
    });

    it("keeps a last chunk that fails on finish, resumable", async () => {
      const bytes = randomBytes(30_000);
      const repo = registry().repository("finish/failing");
      const upload = await repo.blobs.startUpload();
      const failing = (async function* () {
        yield bytes.subarray(0, 10_000);
        throw new Error("client went away");
      })();
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

    it("forgets the links it deletes: a deleted blob or manifest is unknown at once", async () => {
      const reg = registry();
      const repo = reg.repository("forget/app");
      const image = buildImage();
      await pushImage(repo, image, "v1");
      const layer = image.layers[0]!.digest;
      // Read twice: the links are known to exist now.
      for (let i = 0; i < 2; i++) {
        assert.ok((await repo.blobs.stat(layer)).size > 0);
        assert.equal(
          (await repo.manifests.get(image.manifest.digest)).digest,
          image.manifest.digest,
        );
      }
      await repo.blobs.delete(layer);
      await assert.rejects(repo.blobs.stat(layer), rejectsWith(RegistryErrorCode.BlobUnknown));
      await repo.manifests.delete(image.manifest.digest);
      await assert.rejects(
        repo.manifests.get(image.manifest.digest),
        rejectsWith(RegistryErrorCode.ManifestUnknown),
      );
      assert.equal(await repo.manifests.exists(image.manifest.digest), false);

      // Garbage collection removes the now unreferenced blobs and their links.
      const config = image.config.digest;
      assert.ok((await repo.blobs.stat(config)).size > 0);
      await reg.garbageCollect();
      await assert.rejects(repo.blobs.stat(config), rejectsWith(RegistryErrorCode.BlobUnknown));
    });

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
      assert.equal(await exists(driver, `${ROOT}/blobs/sha256/${hex.slice(0, 2)}/${hex}`), false);
      assert.equal(await exists(driver, `${ROOT}/repositories/wrong/_layers/sha256/${hex}`), false);

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

    it("keeps what arrived when the client goes away, and the upload stays resumable", async () => {
      const repo = registry().repository("disconnect");
      const bytes = randomBytes(30_000);
      const upload = await repo.blobs.startUpload();
      const failing = (async function* () {
        yield bytes.subarray(0, 10_000);
        throw new Error("client went away");
      })();
      await assert.rejects(upload.append(failing), /client went away/);
      assert.equal(upload.size, 10_000);
      const resumed = await repo.blobs.resumeUpload(upload.id);
      assert.equal(resumed.size, 10_000);
      await resumed.append(chunks(bytes.subarray(10_000)));
      await resumed.finish(sha256(bytes), bytes.length);
      assert.deepEqual(await readAll(await repo.blobs.reader(sha256(bytes))), bytes);
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
        await exists(driver, `${ROOT}/repositories/cancel/_uploads/${upload.id}`),
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

    it("stores OCI and Docker manifests, indexes and lists as exact bytes", async () => {
      const reg = registry();
      const repo = reg.repository("manifests/app");
      const oci = buildImage();
      await pushImage(repo, oci, "oci");
      const docker = buildImage({ format: "docker" });
      await pushImage(repo, docker, "docker");
      const index = buildIndex();
      await pushIndex(repo, index, "index");
      const list = buildIndex({ format: "docker" });
      await pushIndex(repo, list, "list");

      for (const [tag, item] of [
        ["oci", oci.manifest],
        ["docker", docker.manifest],
        ["index", index.index],
        ["list", list.index],
      ] as const) {
        assert.equal(await repo.tags.resolve(tag), item.digest);
        const stored = await repo.manifests.get(item.digest);
        assert.deepEqual(stored.content, item.bytes);
        assert.equal(stored.mediaType, item.mediaType);
        assert.equal(await repo.manifests.exists(item.digest), true);
        const hex = item.digest.slice(7);
        assert.equal(
          await text(
            driver,
            `${ROOT}/repositories/manifests/app/_manifests/revisions/sha256/${hex}/link`,
          ),
          item.digest,
        );
        assert.equal(
          await text(
            driver,
            `${ROOT}/repositories/manifests/app/_manifests/tags/${tag}/current/link`,
          ),
          item.digest,
        );
        assert.equal(
          await text(
            driver,
            `${ROOT}/repositories/manifests/app/_manifests/tags/${tag}/index/sha256/${hex}/link`,
          ),
          item.digest,
        );
        // As distribution, manifests are not linked as layers.
        assert.equal(
          await exists(driver, `${ROOT}/repositories/manifests/app/_layers/sha256/${hex}`),
          false,
        );
      }
      assert.deepEqual(await repo.tags.list(), ["docker", "index", "list", "oci"]);
      await assert.rejects(
        repo.manifests.get(sha256(Buffer.from("none"))),
        rejectsWith(RegistryErrorCode.ManifestUnknown),
      );
      // Stored once per registry: another repository does not see it without its own revision.
      assert.equal(
        await reg.repository("manifests/other").manifests.exists(oci.manifest.digest),
        false,
      );
    });

    it("validates manifests", async () => {
      const repo = registry().repository("validate");
      const image = buildImage();
      const put = (value: unknown, type: string = MediaType.OciManifest) =>
        repo.manifests.put(
          Buffer.from(typeof value === "string" ? value : JSON.stringify(value)),
          type,
        );
      const manifest = JSON.parse(image.manifest.bytes.toString()) as Record<string, unknown>;

      await assert.rejects(put(manifest), (error) => {
        rejectsWith(RegistryErrorCode.ManifestBlobUnknown)(error);
        assert.deepEqual((error as { detail: unknown }).detail, { digest: image.config.digest });
        return true;
      });
      for (const blob of [image.config, ...image.layers]) await pushBlob(repo, blob);
      await assert.rejects(put("{not json"), rejectsWith(RegistryErrorCode.ManifestInvalid));
      await assert.rejects(put("[]"), rejectsWith(RegistryErrorCode.ManifestInvalid));
      await assert.rejects(
        put({ ...manifest, schemaVersion: 3 }),
        rejectsWith(RegistryErrorCode.ManifestInvalid),
      );
      await assert.rejects(
        put(manifest, MediaType.DockerManifest),
        rejectsWith(RegistryErrorCode.ManifestInvalid),
      );
      await assert.rejects(
        put(manifest, "text/plain"),
        rejectsWith(RegistryErrorCode.ManifestInvalid),
      );
      await assert.rejects(
        put({ ...manifest, config: { ...(manifest.config as object), size: -1 } }),
        rejectsWith(RegistryErrorCode.ManifestInvalid),
      );
      await assert.rejects(
        put({ ...manifest, config: { ...(manifest.config as object), digest: "sha256:xyz" } }),
        rejectsWith(RegistryErrorCode.DigestInvalid),
      );
      await assert.rejects(
        put({ ...manifest, layers: "none" }),
        rejectsWith(RegistryErrorCode.ManifestInvalid),
      );
      await assert.rejects(
        put(
          {
            schemaVersion: 2,
            mediaType: MediaType.OciIndex,
            manifests: [descriptor(image.manifest)],
          },
          MediaType.OciIndex,
        ),
        rejectsWith(RegistryErrorCode.ManifestBlobUnknown),
      );
      for (const schema1 of [
        put(
          { schemaVersion: 1, name: "x", tag: "y", fsLayers: [] },
          "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        put({ schemaVersion: 1, name: "x", tag: "y", fsLayers: [] }, ""),
      ]) {
        await assert.rejects(schema1, (error) => {
          rejectsWith(RegistryErrorCode.ManifestInvalid)(error);
          assert.match((error as Error).message, /schema 1 manifests are not supported/);
          return true;
        });
      }
      await assert.rejects(
        repo.manifests.put(Buffer.alloc(4 * 1024 * 1024 + 1, 32), MediaType.OciManifest),
        rejectsWith(RegistryErrorCode.SizeInvalid),
      );
      await assert.rejects(
        repo.manifests.put(image.manifest.bytes, MediaType.OciManifest, { tag: "-bad" }),
        rejectsWith(RegistryErrorCode.TagInvalid),
      );
      await assert.rejects(
        repo.manifests.put(image.manifest.bytes, MediaType.OciManifest, {
          expectedDigest: sha256(Buffer.from("x")),
        }),
        rejectsWith(RegistryErrorCode.DigestInvalid),
      );

      // Layers with urls need not be pushed; the mediaType field may be left out (OCI), and the
      // Content-Type may carry parameters or be empty.
      const foreign = {
        ...manifest,
        layers: [
          ...(manifest.layers as object[]),
          {
            mediaType: MediaType.OciLayer,
            digest: sha256(Buffer.from("far")),
            size: 3,
            urls: ["https://example.com/layer"],
          },
        ],
      };
      delete (foreign as { mediaType?: string }).mediaType;
      const result = await put(foreign, `${MediaType.OciManifest}; charset=utf-8`);
      assert.equal(result.mediaType, MediaType.OciManifest);
      assert.equal((await put(manifest, "")).digest, image.manifest.digest);
      assert.equal(
        (
          await repo.manifests.put(image.manifest.bytes, "", {
            expectedDigest: digestOf(image.manifest.bytes, "sha512"),
          })
        ).digest,
        digestOf(image.manifest.bytes, "sha512"),
      );
    });

    it("lists referrers with artifactType and annotations, also for subjects not pushed", async () => {
      const repo = registry().repository("referrers");
      const image = buildImage();
      await pushImage(repo, image, "v1");
      const signature = buildArtifact({
        artifactType: "application/vnd.example.signature",
        subject: image.manifest,
        annotations: { "org.example.kind": "signature" },
      });
      const sbom = buildArtifact({
        artifactType: "application/spdx+json",
        subject: image.manifest,
        blobs: [content("application/spdx+json", Buffer.from('{"spdx":true}'))],
      });
      for (const artifact of [signature, sbom]) {
        for (const blob of artifact.blobs) await pushBlob(repo, blob);
        const result = await repo.manifests.put(artifact.manifest.bytes, MediaType.OciManifest);
        assert.equal(result.subject, image.manifest.digest);
      }
      const all = await repo.referrers(image.manifest.digest);
      assert.deepEqual(
        all.map((d) => d.digest).sort(),
        [signature.manifest.digest, sbom.manifest.digest].sort(),
      );
      const signatures = await repo.referrers(
        image.manifest.digest,
        "application/vnd.example.signature",
      );
      assert.deepEqual(signatures, [
        {
          mediaType: MediaType.OciManifest,
          digest: signature.manifest.digest,
          size: signature.manifest.size,
          artifactType: "application/vnd.example.signature",
          annotations: { "org.example.kind": "signature" },
        },
      ]);
      // Without artifactType, the config's media type is the artifact type.
      const plain = jsonContent(MediaType.OciManifest, {
        ...JSON.parse(image.manifest.bytes.toString()),
        subject: descriptor(image.manifest),
      });
      await repo.manifests.put(plain.bytes, MediaType.OciManifest);
      assert.equal((await repo.referrers(image.manifest.digest, MediaType.OciConfig)).length, 1);

      // A subject that is not in the repository is allowed (distribution spec v1.1).
      const orphan = buildArtifact({
        artifactType: "application/x-note",
        subject: content(MediaType.OciManifest, Buffer.from("{}")),
      });
      await repo.manifests.put(orphan.manifest.bytes, MediaType.OciManifest);
      assert.equal((await repo.referrers(sha256(Buffer.from("{}")))).length, 1);

      await repo.manifests.delete(signature.manifest.digest);
      assert.deepEqual(
        await repo.referrers(image.manifest.digest, "application/vnd.example.signature"),
        [],
      );
      assert.deepEqual(await repo.referrers(sha256(Buffer.from("nothing"))), []);
    });

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

    it("purges uploads older than an age", async () => {
      const reg = registry();
      const repo = reg.repository("purge/me");
      const old = await repo.blobs.startUpload();
      const hex = old.id;
      await driver.putContent(
        `${ROOT}/repositories/purge/me/_uploads/${hex}/startedat`,
        Buffer.from("2001-01-01T00:00:00Z"),
      );
      const fresh = await repo.blobs.startUpload();
      assert.deepEqual(await reg.purgeUploads(3_600_000, true), [old.id]);
      assert.ok(await exists(driver, `${ROOT}/repositories/purge/me/_uploads/${old.id}`));
      assert.deepEqual(await reg.purgeUploads(3_600_000), [old.id]);
      assert.equal(await exists(driver, `${ROOT}/repositories/purge/me/_uploads/${old.id}`), false);
      assert.equal((await repo.blobs.resumeUpload(fresh.id)).size, 0);
    });
  });
}

describe("catalog", () => {
  for (const driverName of STORAGE_TEST_DRIVERS) {
    it(`lists repositories sorted by name, paginated, over ${driverName}`, async () => {
      const test = await createTestDriver(driverName);
      try {
        const reg = createRegistryStorage(test.driver);
        const names = [
          "a",
          "a-b",
          "a.b",
          "a/b",
          "a/b/c",
          "a_b",
          "a__b",
          "b",
          "a/b-c",
          "a/b.c",
          "z/y/x",
          "a0",
          "a/a",
        ];
        const blob = content("application/octet-stream", Buffer.from("catalog"));
        for (const name of names) await pushBlob(reg.repository(name), blob);
        // An upload alone does not make a repository (as in distribution).
        await reg.repository("uploads/only").blobs.startUpload();
        const sorted = [...names].sort();
        assert.deepEqual(await reg.catalog(), sorted);
        for (let n = 1; n <= 4; n++) {
          const pages: string[] = [];
          let last: string | undefined;
          for (;;) {
            const page = await reg.catalog(n, last);
            assert.ok(page.length <= n);
            pages.push(...page);
            if (page.length < n) break;
            last = page.at(-1);
          }
          assert.deepEqual(pages, sorted, `pages of ${n}`);
        }
        assert.deepEqual(await reg.catalog(2, "a/b"), ["a/b-c", "a/b.c"]);
        assert.deepEqual(await reg.catalog(3, "a-a"), ["a-b", "a.b", "a/a"]);
        assert.deepEqual(await reg.catalog(5, "z"), ["z/y/x"]);
        assert.deepEqual(await reg.catalog(0), []);
        assert.equal(await reg.repositoryExists("a/b"), true);
        assert.equal(await reg.repositoryExists("uploads/only"), false);
        assert.equal(await reg.repositoryExists("z/y"), false);
        await reg.checkHealth();
      } finally {
        await test.cleanup();
      }
    });
  }

  it("reads only the directories a small page needs", async () => {
    const test = await createTestDriver("inmemory");
    const reg = createRegistryStorage(test.driver);
    const blob = content("application/octet-stream", Buffer.from("catalog"));
    for (const name of ["a/x", "b/x", "c/x", "d/x", "e/x"])
      await pushBlob(reg.repository(name), blob);
    const listed: string[] = [];
    const counting = new Proxy(test.driver, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== "list") return typeof value === "function" ? value.bind(target) : value;
        return (path: string) => {
          listed.push(path);
          return target.list(path);
        };
      },
    });
    assert.deepEqual(await createRegistryStorage(counting).catalog(1, "b/x"), ["c/x"]);
    // `b/x` itself is listed: a repository may have repositories below it (`b/x/y`).
    assert.ok(!listed.some((path) => /\/(a|d|e)(\/x)?$/.test(path)), listed.join(" "));
  });
});

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
            assert.deepEqual(await readAll(await app.blobs.reader(blob.digest)), blob.bytes);
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
