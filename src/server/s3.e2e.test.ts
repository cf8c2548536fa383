// End to end on S3: Berth started from a config.yml whose storage is `storage.s3` on a throwaway
// Ceph RADOS Gateway, skopeo pushing and pulling through it, and blob GETs answered by a 307 to a
// presigned RGW URL that a plain HTTP client can follow. A second Berth on the same bucket with
// `storage.redirect.disable` serves the same blobs itself: two registries sharing one store.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, loadConfig, resolveConfig } from "../config/index.js";
import { DriverBase } from "../driver/index.js";
import { startCeph, type CephCluster } from "../testing/ceph.js";
import { buildImage, buildIndex, MediaType, sha256 } from "../testing/images.js";
import {
  imageEntry,
  indexEntry,
  assertLayoutHolds,
  writeOciLayout,
} from "../testing/oci-layout.js";
import { assertBlobRedirects } from "../testing/redirects.js";
import { sampleValue, scrapeMetrics } from "../testing/prometheus.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startRegistry, type RunningRegistry } from "./index.js";

const MiB = 1024 * 1024;
const BUCKET = "berth-e2e";
const ROOT = "registry/root";
const ACCEPT = [MediaType.OciManifest, MediaType.OciIndex].join(", ");

describe(
  "s3 storage on Ceph RGW, end to end",
  {
    skip: skipUnlessCommands(
      ["ceph-mon", "ceph-osd", "radosgw", "ceph", "skopeo"],
      ["ceph-mon", "ceph-osd", "radosgw", "ceph-common", "skopeo"],
    ),
  },
  () => {
    let ceph: CephCluster;
    let directory: string;
    /** Redirects blob GETs to RGW (the default). */
    let redirecting: RunningRegistry;
    /** The same bucket and root with `storage.redirect.disable: true`. */
    let direct: RunningRegistry;
    // Layers above the 5 MiB chunk size go to RGW as multipart uploads of several parts.
    const image = buildImage({ layers: 3, gzip: true, layerSize: 6 * MiB });
    const index = buildIndex({ layers: 2, gzip: true, layerSize: 256 * 1024 });

    before(async () => {
      directory = await mkdtemp(join(tmpdir(), "berth-s3-e2e-"));
      ceph = await startCeph();
      await ceph.createBucket(BUCKET);
      // config.yml as an operator writes it; the secret and the chunk size come from the
      // environment as strings, the way distribution's overrides deliver them.
      const configFile = join(directory, "config.yml");
      await writeFile(
        configFile,
        [
          "version: 0.1",
          "log:",
          "  level: warn",
          "storage:",
          "  s3:",
          `    bucket: ${BUCKET}`,
          `    region: ${ceph.region}`,
          `    regionendpoint: ${ceph.endpoint}`,
          "    forcepathstyle: true",
          `    accesskey: ${ceph.accessKey}`,
          `    rootdirectory: /${ROOT}`,
          "http:",
          "  addr: 127.0.0.1:0",
          "  debug:",
          "    addr: 127.0.0.1:0",
          "    prometheus:",
          "      enabled: true",
          "",
        ].join("\n"),
      );
      const environment = {
        REGISTRY_STORAGE_S3_SECRETKEY: ceph.secretKey,
        REGISTRY_STORAGE_S3_CHUNKSIZE: String(5 * MiB),
      };
      const config = await loadConfig(configFile, environment);
      redirecting = await startRegistry({ config });
      direct = await startRegistry({
        config: await loadConfig(configFile, {
          ...environment,
          REGISTRY_STORAGE_REDIRECT_DISABLE: "true",
        }),
      });
    });

    after(async () => {
      await redirecting?.close();
      await direct?.close();
      await ceph?.stop();
      if (directory !== undefined) await rm(directory, { recursive: true, force: true });
    });

    it("skopeo pushes and pulls a multi-layer image and a multi-arch index with identical digests", async (t) => {
      const source = join(directory, "source");
      await writeOciLayout(source, [imageEntry("image", image), indexEntry("multi", index)]);
      const remote = `docker://127.0.0.1:${redirecting.port}/e2e`;

      let started = performance.now();
      await skopeoCopy(`oci:${source}:image`, `${remote}/image:v1`);
      await skopeoCopy(`oci:${source}:multi`, `${remote}/multi:v1`);
      const pushSeconds = (performance.now() - started) / 1000;
      // What the push cost in requests to RGW, by S3 operation.
      const pushed = await scrapeMetrics(`${redirecting.debugUrl}/metrics`);
      const requests = (operation: string) =>
        sampleValue(pushed, "registry_storage_backend_requests_total", { driver: "s3", operation });
      for (const operation of [
        "PutObject",
        "UploadPart",
        "CompleteMultipartUpload",
        "HeadObject",
      ]) {
        assert.ok(requests(operation) > 0, `${operation}: ${requests(operation)}`);
      }

      // Pulled through the redirecting registry: skopeo fetches every blob from RGW, so Berth
      // signs a URL per blob and reads none itself (manifests are read whole, not streamed).
      assert.ok(redirecting.driver instanceof DriverBase);
      const { metrics } = redirecting.driver;
      const calls = () => ({
        reader: metrics.reader?.calls ?? 0,
        redirectURL: metrics.redirectURL?.calls ?? 0,
      });
      const before = calls();
      const pulled = join(directory, "pulled");
      started = performance.now();
      await skopeoCopy(`${remote}/image:v1`, `oci:${pulled}:image`);
      await skopeoCopy(`${remote}/multi:v1`, `oci:${pulled}:multi`);
      const pullSeconds = (performance.now() - started) / 1000;
      const blobCount = image.layers.length + 1 + index.images.length * 3;
      assert.equal(calls().reader, before.reader);
      assert.ok(
        calls().redirectURL - before.redirectURL >= blobCount,
        `${calls().redirectURL - before.redirectURL} redirect URLs for ${blobCount} blobs`,
      );
      const megabytes = [...image.layers, ...index.images.flatMap((each) => each.layers)].reduce(
        (sum, layer) => sum + layer.size / MiB,
        0,
      );
      t.diagnostic(
        `skopeo on RGW, ${megabytes.toFixed(1)} MiB of layers: push ${pushSeconds.toFixed(2)} s, pull ${pullSeconds.toFixed(2)} s`,
      );

      await assertLayoutHolds(pulled, [imageEntry("image", image), indexEntry("multi", index)]);
    });

    it("answers a blob GET and HEAD with a 307 to a presigned RGW URL that plain fetch follows", async () => {
      const layer = image.layers[0]!;
      const blobUrl = `${redirecting.url}/v2/e2e/image/blobs/${layer.digest}`;
      const location = await assertBlobRedirects(blobUrl, layer);
      // The key distribution's layout gives the blob, below rootdirectory, in the bucket.
      const hex = layer.digest.slice("sha256:".length);
      assert.equal(location.origin, ceph.endpoint);
      assert.equal(
        location.pathname,
        `/${BUCKET}/${ROOT}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`,
      );

      const unknown = await fetch(
        `${redirecting.url}/v2/e2e/image/blobs/${sha256(Buffer.from("x"))}`,
        {
          redirect: "manual",
        },
      );
      assert.equal(unknown.status, 404);
      await unknown.arrayBuffer();
    });

    it("serves blobs itself, from the same bucket, with storage.redirect.disable", async () => {
      for (const layer of [image.layers[1]!, index.images[1]!.layers[0]!]) {
        const repository = image.layers.includes(layer) ? "e2e/image" : "e2e/multi";
        const answer = await fetch(`${direct.url}/v2/${repository}/blobs/${layer.digest}`, {
          redirect: "manual",
        });
        assert.equal(answer.status, 200);
        assert.equal(answer.headers.get("location"), null);
        assert.equal(answer.headers.get("docker-content-digest"), layer.digest);
        assert.equal(sha256(new Uint8Array(await answer.arrayBuffer())), layer.digest);
      }
    });

    it("never redirects manifests or tags", async () => {
      const arm = index.images[1]!.manifest;
      const requests: [string, string, string | undefined][] = [
        ["GET", "e2e/image/manifests/v1", image.manifest.digest],
        ["HEAD", "e2e/image/manifests/v1", undefined],
        ["GET", `e2e/image/manifests/${image.manifest.digest}`, image.manifest.digest],
        ["GET", "e2e/multi/manifests/v1", index.index.digest],
        ["GET", `e2e/multi/manifests/${arm.digest}`, arm.digest],
        ["HEAD", `e2e/multi/manifests/${arm.digest}`, undefined],
        ["GET", "e2e/multi/tags/list", undefined],
      ];
      for (const [method, path, digest] of requests) {
        const answer = await fetch(`${redirecting.url}/v2/${path}`, {
          method,
          headers: { accept: ACCEPT },
          redirect: "manual",
        });
        assert.equal(answer.status, 200, `${method} ${path}`);
        assert.equal(answer.headers.get("location"), null, `${method} ${path}`);
        const body = new Uint8Array(await answer.arrayBuffer());
        if (digest !== undefined) assert.equal(sha256(body), digest, `${method} ${path}`);
      }
      const tags = await fetch(`${redirecting.url}/v2/e2e/image/tags/list`);
      assert.deepEqual(await tags.json(), { name: "e2e/image", tags: ["v1"] });
    });
  },
);

describe("s3 parameters through the config", () => {
  it("name the storage.s3 key of a bad parameter, from config.yml or the environment", async () => {
    const tree = {
      version: "0.1",
      storage: { s3: { bucket: "images", region: "us-east-1" } },
      http: { addr: "127.0.0.1:0" },
    };
    // Checked before the SDK loads or any request is made: no server is needed.
    await assert.rejects(
      startRegistry({ config: resolveConfig(tree, { REGISTRY_STORAGE_S3_CHUNKSIZE: "1024" }) }),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems[0]!.key, "storage.s3.chunksize");
        assert.match(error.message, /1024/);
        return true;
      },
    );
    await assert.rejects(
      startRegistry({
        config: resolveConfig({ ...tree, storage: { s3: { region: "us-east-1" } } }),
      }),
      /storage\.s3\.bucket/,
    );
    await assert.rejects(
      startRegistry({
        config: resolveConfig(tree, { REGISTRY_STORAGE_S3_REGIONENDPOINT: "ftp://ceph:7480" }),
      }),
      /storage\.s3\.regionendpoint/,
    );
  });
});
