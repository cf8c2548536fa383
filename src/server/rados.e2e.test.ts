// End to end on RADOS: Berth started from a config.yml whose storage is `storage.rados` on a
// throwaway Ceph cluster (monitor and OSD, no gateway), skopeo pushing and pulling through it;
// then a second Berth configured only by the environment (REGISTRY_STORAGE=rados and
// REGISTRY_STORAGE_RADOS_* overrides) serving the same pool.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../config/index.js";
import { startCeph, type CephCluster } from "../testing/ceph.js";
import { buildImage, buildIndex, sha256 } from "../testing/images.js";
import {
  imageEntry,
  indexEntry,
  assertLayoutHolds,
  writeOciLayout,
} from "../testing/oci-layout.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startRegistry, type RunningRegistry } from "./index.js";

const MiB = 1024 * 1024;
const POOL = "berth-e2e";

describe(
  "rados storage on Ceph, end to end",
  {
    skip: skipUnlessCommands(
      ["ceph-mon", "ceph-osd", "ceph", "skopeo"],
      ["ceph-mon", "ceph-osd", "ceph-common", "skopeo"],
    ),
  },
  () => {
    let ceph: CephCluster;
    let directory: string;
    let fromFile: RunningRegistry;
    let fromEnvironment: RunningRegistry;
    // Layers over the 1 MiB chunk size are striped over several RADOS objects.
    const image = buildImage({ layers: 3, gzip: true, layerSize: 3 * MiB });
    const index = buildIndex({ layers: 2, gzip: true, layerSize: 256 * 1024 });

    before(async () => {
      directory = await mkdtemp(join(tmpdir(), "berth-rados-e2e-"));
      ceph = await startCeph({ rgw: false });
      await ceph.createPool(POOL);
      const configFile = join(directory, "config.yml");
      await writeFile(
        configFile,
        [
          "version: 0.1",
          "log:",
          "  level: warn",
          "storage:",
          "  rados:",
          `    poolname: ${POOL}`,
          "    username: admin",
          `    conffile: ${ceph.confFile}`,
          "http:",
          "  addr: 127.0.0.1:0",
          "",
        ].join("\n"),
      );
      // The chunk size arrives from the environment as a string, as distribution's overrides do.
      fromFile = await startRegistry({
        config: await loadConfig(configFile, { REGISTRY_STORAGE_RADOS_CHUNKSIZE: String(MiB) }),
      });
      // No storage section at all: the driver and its parameters only from the environment.
      const bare = join(directory, "bare.yml");
      await writeFile(bare, "version: 0.1\nlog:\n  level: warn\nhttp:\n  addr: 127.0.0.1:0\n");
      fromEnvironment = await startRegistry({
        config: await loadConfig(bare, {
          REGISTRY_STORAGE: "rados",
          REGISTRY_STORAGE_RADOS_POOLNAME: POOL,
          REGISTRY_STORAGE_RADOS_CONFFILE: ceph.confFile,
          REGISTRY_STORAGE_RADOS_CHUNKSIZE: String(2 * MiB),
        }),
      });
    });

    after(async () => {
      await fromFile?.close();
      await fromEnvironment?.close();
      await ceph?.stop();
      if (directory !== undefined) await rm(directory, { recursive: true, force: true });
    });

    it("skopeo pushes and pulls a multi-layer image and a multi-arch index with identical digests", async () => {
      const source = join(directory, "source");
      const entries = [imageEntry("image", image), indexEntry("multi", index)];
      await writeOciLayout(source, entries);
      const remote = `docker://127.0.0.1:${fromFile.port}/e2e`;
      await skopeoCopy(`oci:${source}:image`, `${remote}/image:v1`);
      await skopeoCopy(`oci:${source}:multi`, `${remote}/multi:v1`);
      const pulled = join(directory, "pulled");
      await skopeoCopy(`${remote}/image:v1`, `oci:${pulled}:image`);
      await skopeoCopy(`${remote}/multi:v1`, `oci:${pulled}:multi`);
      await assertLayoutHolds(pulled, entries);
    });

    it("a Berth configured by REGISTRY_STORAGE=rados serves the same pool", async () => {
      const { driver } = fromEnvironment;
      assert.equal(driver.name, "rados");
      const layer = image.layers[2]!;
      const answer = await fetch(`${fromEnvironment.url}/v2/e2e/image/blobs/${layer.digest}`);
      assert.equal(answer.status, 200);
      assert.equal(sha256(new Uint8Array(await answer.arrayBuffer())), layer.digest);
      const pulled = join(directory, "pulled-env");
      await skopeoCopy(
        `docker://127.0.0.1:${fromEnvironment.port}/e2e/multi:v1`,
        `oci:${pulled}:multi`,
      );
      await assertLayoutHolds(pulled, [indexEntry("multi", index)]);
      const catalog = await fetch(`${fromEnvironment.url}/v2/_catalog`);
      assert.deepEqual(await catalog.json(), { repositories: ["e2e/image", "e2e/multi"] });
    });
  },
);
