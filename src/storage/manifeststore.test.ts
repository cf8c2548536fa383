// Manifests over every test driver: OCI and Docker manifests, indexes and lists stored as exact
// bytes, validation, and referrers.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
  rejectsWith,
  text,
  exists,
  ROOT,
  STORAGE_TEST_DRIVERS,
  useStorage,
} from "../testing/storage-drivers.js";
import { digestOf, RegistryErrorCode } from "./index.js";

for (const driverName of STORAGE_TEST_DRIVERS) {
  describe(`manifests over ${driverName}`, () => {
    const storage = useStorage(driverName);
    const { registry } = storage;

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
            storage.driver,
            `${ROOT}/repositories/manifests/app/_manifests/revisions/sha256/${hex}/link`,
          ),
          item.digest,
        );
        assert.equal(
          await text(
            storage.driver,
            `${ROOT}/repositories/manifests/app/_manifests/tags/${tag}/current/link`,
          ),
          item.digest,
        );
        assert.equal(
          await text(
            storage.driver,
            `${ROOT}/repositories/manifests/app/_manifests/tags/${tag}/index/sha256/${hex}/link`,
          ),
          item.digest,
        );
        // As distribution, manifests are not linked as layers.
        assert.equal(
          await exists(storage.driver, `${ROOT}/repositories/manifests/app/_layers/sha256/${hex}`),
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
  });
}
