// Interop with distribution, both ways, on one filesystem root: what Berth's storage layer writes,
// Debian's docker-registry (distribution 2.8.2) serves and skopeo pulls with identical digests; what
// skopeo pushes into docker-registry, Berth's storage layer reads back byte for byte.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { describe, it } from "node:test";
import { createDriver } from "../driver/index.js";
import { startDockerRegistry } from "../testing/docker-registry.js";
import {
  buildArtifact,
  buildImage,
  buildIndex,
  MediaType,
  pushBlob,
  pushImage,
  pushIndex,
  type Content,
} from "../testing/images.js";
import { imageEntry, indexEntry, writeOciLayout } from "../testing/oci-layout.js";
import { skopeoCopy, skopeoInspectRaw } from "../testing/skopeo.js";
import "../testing/storage-drivers.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { createRegistryStorage } from "./index.js";

const skip = skipUnlessCommands(["docker-registry", "skopeo"], ["docker-registry", "skopeo"]);

async function withTempDir<T>(prefix: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The blob `item` in an OCI layout directory, as bytes. */
function layoutBlob(layout: string, item: Content): Promise<Buffer> {
  return readFile(join(layout, "blobs", "sha256", item.digest.slice("sha256:".length)));
}

describe("interop with distribution 2.8.2 (docker-registry) and skopeo", { skip }, () => {
  it("serves what Berth wrote: skopeo pulls an image and a multi-arch index with identical digests", async () => {
    await withTempDir("berth-interop-root-", async (root) => {
      const driver = await createDriver("filesystem", { rootdirectory: root });
      const storage = createRegistryStorage(driver);
      const repo = storage.repository("interop/berth-wrote");
      const image = buildImage({ layers: 3, gzip: true });
      await pushImage(repo, image, "v1");
      const docker = buildImage({ format: "docker" });
      await pushImage(repo, docker, "docker");
      const index = buildIndex({ layers: 2 });
      await pushIndex(repo, index, "multi");
      // An artifact with the empty config and a subject, as oras pushes it.
      const artifact = buildArtifact({
        artifactType: "application/x-note",
        subject: image.manifest,
      });
      for (const blob of artifact.blobs) await pushBlob(repo, blob);
      await repo.manifests.put(artifact.manifest.bytes, MediaType.OciManifest, { tag: "note" });

      const registry = await startDockerRegistry(root, { deleteEnabled: false });
      try {
        const base = `docker://${registry.host}/interop/berth-wrote`;
        for (const [tag, item] of [
          ["v1", image.manifest],
          ["docker", docker.manifest],
          ["multi", index.index],
          ["note", artifact.manifest],
        ] as const) {
          const raw = await skopeoInspectRaw(`${base}:${tag}`);
          assert.equal(
            raw.toString("utf8").trim(),
            item.bytes.toString("utf8"),
            `manifest of ${tag}`,
          );
        }
        const tags = (await (
          await fetch(`${registry.url}/v2/interop/berth-wrote/tags/list`)
        ).json()) as {
          tags: string[];
        };
        assert.deepEqual(tags.tags.sort(), ["docker", "multi", "note", "v1"]);
        const catalog = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as {
          repositories: string[];
        };
        assert.deepEqual(catalog.repositories, ["interop/berth-wrote"]);

        await withTempDir("berth-interop-oci-", async (layout) => {
          await skopeoCopy(`${base}:multi`, `oci:${layout}:multi`);
          await skopeoCopy(`${base}:v1`, `oci:${layout}:v1`);
          const top = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as {
            manifests: { digest: string }[];
          };
          assert.deepEqual(
            top.manifests.map((m) => m.digest).sort(),
            [index.index.digest, image.manifest.digest].sort(),
          );
          for (const item of [
            index.index,
            ...index.images.flatMap((child) => [child.manifest, child.config, ...child.layers]),
            image.manifest,
            image.config,
            ...image.layers,
          ]) {
            assert.deepEqual(await layoutBlob(layout, item), item.bytes, `blob ${item.digest}`);
          }
        });
      } finally {
        await registry.stop();
      }
    });
  });

  it("reads what distribution wrote: an image and an index pushed by skopeo, byte for byte", async () => {
    await withTempDir("berth-interop-root-", async (root) => {
      const image = buildImage({ layers: 3, gzip: true });
      const index = buildIndex();
      await withTempDir("berth-interop-src-", async (layout) => {
        await writeOciLayout(layout, [imageEntry("v1", image), indexEntry("multi", index)]);
        const registry = await startDockerRegistry(root);
        try {
          const base = `docker://${registry.host}/interop/skopeo/pushed`;
          await skopeoCopy(`oci:${layout}:v1`, `${base}:v1`);
          await skopeoCopy(`oci:${layout}:multi`, `${base}:multi`);
        } finally {
          await registry.stop();
        }
      });

      const driver = await createDriver("filesystem", { rootdirectory: root });
      const storage = createRegistryStorage(driver, { deleteEnabled: true });
      assert.deepEqual(await storage.catalog(), ["interop/skopeo/pushed"]);
      const repo = storage.repository("interop/skopeo/pushed");
      assert.deepEqual(await repo.tags.list(), ["multi", "v1"]);
      assert.equal(await repo.tags.resolve("v1"), image.manifest.digest);
      assert.equal(await repo.tags.resolve("multi"), index.index.digest);
      const stored = await repo.manifests.get(index.index.digest);
      assert.deepEqual(stored.content, index.index.bytes);
      assert.equal(stored.mediaType, MediaType.OciIndex);
      for (const each of [image, ...index.images]) {
        assert.deepEqual(
          (await repo.manifests.get(each.manifest.digest)).content,
          each.manifest.bytes,
        );
        for (const blob of [each.config, ...each.layers]) {
          assert.deepEqual(await buffer(await repo.blobs.reader(blob.digest)), blob.bytes);
          assert.equal((await repo.blobs.stat(blob.digest)).size, blob.size);
        }
      }
      // Berth's GC understands distribution's root: nothing there is garbage.
      const gc = await storage.garbageCollect({ deleteUntagged: true });
      assert.deepEqual(gc.deletedBlobs, []);
      assert.deepEqual(gc.deletedManifests, []);
    });
  });
});
