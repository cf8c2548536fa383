// The skopeo workload's image: an OCI image layout directory (oci-layout, index.json, blobs) of a
// config and N layers, written from the run's content source so every copy pushes layers the
// registry has never seen. Layers are plain bytes under the uncompressed layer media type: copying
// does not look inside them, and generating tar entries would only spend time outside the timing.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import type { ContentSource } from "./content.js";

const execFileAsync = promisify(execFile);

/** The reference name inside the layout's index.json. */
export const LAYOUT_TAG = "bench";

/** A descriptor as manifests list them. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** What was written: the manifest's descriptor and its layers'. */
export interface ImageLayout {
  directory: string;
  manifest: Descriptor;
  layers: Descriptor[];
}

/** Writes an OCI image layout of `layerCount` layers of `layerBytes` each into `directory`. */
export async function writeImageLayout(
  directory: string,
  content: ContentSource,
  label: string,
  layerCount: number,
  layerBytes: number,
): Promise<ImageLayout> {
  const blobs = join(directory, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const layers: Descriptor[] = [];
  for (let index = 0; index < layerCount; index++) {
    const blob = content.blob(`${label}/layer${index}`, layerBytes);
    const digest = blob.digest();
    await pipeline(Readable.from(blob.chunks()), createWriteStream(join(blobs, hex(digest))));
    layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size: blob.size });
  }
  const config = await writeJsonBlob(blobs, "application/vnd.oci.image.config.v1+json", {
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) },
  });
  const manifest = await writeJsonBlob(blobs, "application/vnd.oci.image.manifest.v1+json", {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config,
    layers,
  });
  await writeFile(join(directory, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(directory, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { ...manifest, annotations: { "org.opencontainers.image.ref.name": LAYOUT_TAG } },
      ],
    }),
  );
  return { directory, manifest, layers };
}

/** The manifest descriptor a layout's index.json lists first. */
export async function readLayoutManifest(directory: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(directory, "index.json"), "utf8")) as {
    manifests?: Descriptor[];
  };
  const manifest = index.manifests?.[0];
  if (manifest === undefined) throw new Error(`${directory}/index.json lists no manifest`);
  return manifest;
}

/** `skopeo copy` between two references over plain HTTP, keeping digests unchanged. */
export async function skopeoCopy(source: string, destination: string): Promise<void> {
  const args = [
    "--insecure-policy",
    "copy",
    "--quiet",
    "--preserve-digests",
    "--src-tls-verify=false",
    "--dest-tls-verify=false",
    source,
    destination,
  ];
  try {
    await execFileAsync("skopeo", args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(" ")} failed: ${failure.stderr || failure.message}`);
  }
}

async function writeJsonBlob(
  blobs: string,
  mediaType: string,
  value: unknown,
): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  await writeFile(join(blobs, hex(digest)), bytes);
  return { mediaType, digest, size: bytes.length };
}

function hex(digest: string): string {
  return digest.slice("sha256:".length);
}
