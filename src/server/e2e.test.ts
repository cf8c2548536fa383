// End to end: real clients (skopeo, podman) push to and pull from a Berth started with
// startRegistry over the filesystem driver, and what comes back has the digests that went in.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { buildImage, buildIndex, sha256 } from "../testing/images.js";
import {
  imageEntry,
  indexEntry,
  assertLayoutHolds,
  writeOciLayout,
} from "../testing/oci-layout.js";
import { skopeoCopy, skopeoInspectRaw } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startRegistry, type RunningRegistry } from "./index.js";

async function withRegistry(
  fn: (registry: RunningRegistry, directory: string) => Promise<void>,
): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "berth-e2e-"));
  const registry = await startRegistry({
    driver: "filesystem",
    parameters: { rootdirectory: join(directory, "data") },
  });
  try {
    await fn(registry, directory);
  } finally {
    await registry.close();
    await rm(directory, { recursive: true, force: true });
  }
}

describe("end to end", () => {
  it(
    "skopeo pushes and pulls a multi-layer image and a multi-arch index with identical digests",
    { skip: skipUnlessCommands(["skopeo"], ["skopeo"]) },
    async () => {
      await withRegistry(async (registry, directory) => {
        const image = buildImage({ layers: 3, gzip: true, layerSize: 64 * 1024 });
        const index = buildIndex({ layers: 2, gzip: true });
        const source = join(directory, "source");
        await writeOciLayout(source, [imageEntry("image", image), indexEntry("multi", index)]);
        const remote = `docker://127.0.0.1:${registry.port}/e2e`;

        await skopeoCopy(`oci:${source}:image`, `${remote}/image:v1`);
        await skopeoCopy(`oci:${source}:multi`, `${remote}/multi:v1`);

        assert.equal(sha256(await skopeoInspectRaw(`${remote}/image:v1`)), image.manifest.digest);
        assert.equal(sha256(await skopeoInspectRaw(`${remote}/multi:v1`)), index.index.digest);
        const arm = index.images[1]!.manifest.digest;
        assert.equal(sha256(await skopeoInspectRaw(`${remote}/multi@${arm}`)), arm);

        // The bytes landed in distribution's layout.
        const hex = image.layers[0]!.digest.slice("sha256:".length);
        await access(
          join(directory, "data/docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"),
        );

        const pulled = join(directory, "pulled");
        await skopeoCopy(`${remote}/image:v1`, `oci:${pulled}:image`);
        await skopeoCopy(`${remote}/multi:v1`, `oci:${pulled}:multi`);
        await assertLayoutHolds(pulled, [imageEntry("image", image), indexEntry("multi", index)]);
      });
    },
  );

  it(
    "podman pulls, pushes and pulls back an image",
    { skip: skipUnlessCommands(["podman", "skopeo"], ["podman", "skopeo"]) },
    async () => {
      await withRegistry(async (registry, directory) => {
        const image = buildImage({ layers: 2, gzip: true });
        const source = join(directory, "source");
        await writeOciLayout(source, [imageEntry("image", image)]);
        const host = `127.0.0.1:${registry.port}`;
        await skopeoCopy(`oci:${source}:image`, `docker://${host}/e2e/image:v1`);

        // A storage of podman's own in the temp dir: the machine's images are not touched.
        const storage = [
          "--root",
          join(directory, "podman/root"),
          "--runroot",
          join(directory, "podman/runroot"),
          "--storage-driver",
          "vfs",
        ];
        const podman = async (...args: string[]): Promise<string> => {
          try {
            const { stdout } = await promisify(execFile)("podman", [...storage, ...args], {
              timeout: 60_000,
            });
            return stdout;
          } catch (error) {
            const failure = error as { stderr?: string; message: string };
            throw new Error(
              `podman ${args.join(" ")} failed: ${failure.stderr || failure.message}`,
            );
          }
        };
        const configHex = image.config.digest.slice("sha256:".length);

        await podman("pull", "--tls-verify=false", `${host}/e2e/image:v1`);
        assert.equal(
          (await podman("image", "inspect", "--format", "{{.Id}}", `${host}/e2e/image:v1`)).trim(),
          configHex,
        );

        const digestFile = join(directory, "pushed-digest");
        await podman(
          "push",
          "--tls-verify=false",
          "--digestfile",
          digestFile,
          `${host}/e2e/image:v1`,
          `docker://${host}/e2e/podman:v1`,
        );
        const pushed = (await readFile(digestFile, "utf8")).trim();
        const head = await fetch(`${registry.url}/v2/e2e/podman/manifests/v1`, {
          method: "HEAD",
          headers: {
            accept:
              "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
          },
        });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("docker-content-digest"), pushed);

        await podman("rmi", "--all", "--force");
        await podman("pull", "--tls-verify=false", `${host}/e2e/podman:v1`);
        assert.equal(
          (await podman("image", "inspect", "--format", "{{.Id}}", `${host}/e2e/podman:v1`)).trim(),
          configHex,
        );
      });
    },
  );
});
