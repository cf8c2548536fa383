// Distribution 2.8.2 (Debian's docker-registry) still serves a root after Berth's online garbage
// collection ran on it: the collection keeps its own state beside distribution's tree (/berth/gc:
// lease, clock, refresh records, trash) and removes whole blobs, links and revisions the way
// distribution lays them out. Everything that should remain pulls from docker-registry with
// verified digests, what was collected is gone there too, and distribution's own collector finds
// nothing left to collect.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { startDockerRegistry } from "../testing/docker-registry.js";
import {
  buildArtifact,
  buildImage,
  buildIndex,
  MediaType,
  pushBlob,
  pushImage,
  pushIndex,
  sha256,
  type Content,
} from "../testing/images.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { CLOCK_SLACK_MS } from "../storage/index.js";
import { collectOnce, startRegistry, type RunningRegistry } from "./index.js";

const execFileAsync = promisify(execFile);
const DELAY_MS = 500;
const ACCEPT = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
].join(", ");

describe(
  "distribution 2.8.2 serves a root after Berth's online garbage collection",
  { skip: skipUnlessCommands(["docker-registry"], ["docker-registry"]) },
  () => {
    let directory: string;
    let root: string;
    let berth: RunningRegistry;

    before(async () => {
      directory = await mkdtemp(join(tmpdir(), "berth-gc-interop-"));
      root = join(directory, "root");
      berth = await startRegistry({
        logLevel: "silent",
        config: {
          version: "0.1",
          storage: {
            filesystem: { rootdirectory: root },
            delete: { enabled: true },
            maintenance: { uploadpurging: { enabled: false } },
          },
          http: { addr: "127.0.0.1:0" },
        },
      });
    });

    after(async () => {
      await berth?.close();
      await rm(directory, { recursive: true, force: true });
    });

    it("pulls everything that should remain, and nothing that was collected", async () => {
      const repo = berth.storage.repository("interop/gc");
      const kept = buildImage({ layers: 2, gzip: true });
      await pushImage(repo, kept, "v1");
      const docker = buildImage({ format: "docker" });
      await pushImage(repo, docker, "docker");
      const index = buildIndex({ layers: 1 });
      await pushIndex(repo, index, "multi");
      const signature = buildArtifact({
        artifactType: "application/x-note",
        subject: kept.manifest,
      });
      await pushBlob(repo, emptyConfig());
      await repo.manifests.put(signature.manifest.bytes, MediaType.OciManifest);
      // Untagged by a tag move: collected with deleteUntagged, with its own layers.
      const untagged = buildImage({ layers: 1 });
      await pushImage(repo, untagged, "moving");
      await pushImage(repo, kept, "moving");
      // Deleted by a client: its blobs become garbage.
      const deleted = buildImage({ layers: 1 });
      await pushImage(repo, deleted, "gone");
      await repo.manifests.delete(deleted.manifest.digest);
      // Uploaded and never referenced.
      const orphan = { ...kept.config, bytes: Buffer.from("orphan bytes") };
      orphan.digest = sha256(orphan.bytes);
      orphan.size = orphan.bytes.length;
      await pushBlob(repo, orphan);

      // Everything is older than the delay: this collection may take what is garbage.
      await new Promise((resolve) => setTimeout(resolve, DELAY_MS + CLOCK_SLACK_MS));
      const result = await collectOnce(berth.storage, {
        delayMs: DELAY_MS,
        deleteUntagged: true,
      });
      const collected = [untagged, deleted].flatMap((image) => [
        image.manifest.digest,
        image.config.digest,
        ...image.layers.map((layer) => layer.digest),
      ]);
      for (const digest of [...collected, orphan.digest]) {
        if (digest === kept.config.digest) continue;
        assert.ok(result.deletedBlobs.includes(digest), `${digest} collected`);
      }
      // Berth's state is beside distribution's tree, which is all distribution reads.
      assert.deepEqual((await readdir(root)).sort(), ["berth", "docker"]);

      const registry = await startDockerRegistry(root);
      try {
        const get = (path: string, method = "GET"): Promise<Response> =>
          fetch(`${registry.url}/v2/interop/gc/${path}`, { method, headers: { Accept: ACCEPT } });
        const pullImage = async (
          image: { manifest: Content; config: Content; layers: Content[] },
          reference: string,
        ) => {
          const manifest = await get(`manifests/${reference}`);
          assert.equal(manifest.status, 200, `manifest ${reference}: ${registry.output()}`);
          const bytes = Buffer.from(await manifest.arrayBuffer());
          assert.equal(sha256(bytes), image.manifest.digest, reference);
          for (const blob of [image.config, ...image.layers]) {
            const response = await get(`blobs/${blob.digest}`);
            assert.equal(response.status, 200, `blob ${blob.digest} of ${reference}`);
            assert.equal(sha256(Buffer.from(await response.arrayBuffer())), blob.digest);
          }
        };
        await pullImage(kept, "v1");
        await pullImage(kept, "moving");
        await pullImage(docker, "docker");
        const multi = await get("manifests/multi");
        assert.equal(multi.status, 200);
        assert.equal(sha256(Buffer.from(await multi.arrayBuffer())), index.index.digest);
        for (const child of index.images) await pullImage(child, child.manifest.digest);
        const note = await get(`manifests/${signature.manifest.digest}`);
        assert.equal(note.status, 200, "a referrer of a kept image is kept");
        await note.arrayBuffer();

        for (const gone of [untagged, deleted]) {
          const manifest = await get(`manifests/${gone.manifest.digest}`, "HEAD");
          assert.equal(manifest.status, 404, `manifest ${gone.manifest.digest}`);
          for (const layer of gone.layers) {
            assert.equal((await get(`blobs/${layer.digest}`, "HEAD")).status, 404);
          }
        }
        assert.equal((await get(`blobs/${orphan.digest}`, "HEAD")).status, 404);
        const tags = await get("tags/list");
        assert.deepEqual(((await tags.json()) as { tags: string[] }).tags.sort(), [
          "docker",
          "moving",
          "multi",
          "v1",
        ]);
      } finally {
        await registry.stop();
      }

      // distribution's own collector agrees: nothing left to collect. (Not with its
      // --delete-untagged, which in 2.8 counts an index's children and referrers as untagged.)
      const configPath = join(directory, "distribution.yml");
      await writeFile(
        configPath,
        JSON.stringify({
          version: 0.1,
          log: { level: "error" },
          storage: { filesystem: { rootdirectory: root } },
        }),
      );
      const { stdout } = await execFileAsync(
        "docker-registry",
        ["garbage-collect", "--dry-run", configPath],
        { maxBuffer: 16 * 1024 * 1024 },
      );
      assert.match(
        stdout,
        /\d+ blobs marked, 0 blobs and 0 manifests eligible for deletion/,
        stdout,
      );
    });
  },
);

/** The OCI empty config `{}`, for an artifact that brings no blobs of its own. */
function emptyConfig(): Content {
  const bytes = Buffer.from("{}");
  return { mediaType: MediaType.OciEmpty, digest: sha256(bytes), size: bytes.length, bytes };
}
