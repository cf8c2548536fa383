// Test support: an OCI image layout on disk (the `oci:` transport of skopeo and podman), written
// from the content built by ./images.ts and read back after a pull, so tests can push real images
// through real clients and compare digests.

import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MediaType, sha256, type Content, type TestImage, type TestIndex } from "./images.js";

/** The annotation an OCI layout names its tags with. */
const refName = "org.opencontainers.image.ref.name";

/** One tagged entry of a layout: the top manifest (or index) and every blob it needs. */
export interface LayoutEntry {
  tag: string;
  manifest: Content;
  blobs: Content[];
}

/** The layout entry of a single-platform image. */
export function imageEntry(tag: string, image: TestImage): LayoutEntry {
  return { tag, manifest: image.manifest, blobs: [image.config, ...image.layers] };
}

/** The layout entry of a multi-platform image: the index, its manifests and their blobs. */
export function indexEntry(tag: string, index: TestIndex): LayoutEntry {
  return {
    tag,
    manifest: index.index,
    blobs: index.images.flatMap((image) => [image.manifest, image.config, ...image.layers]),
  };
}

function blobPath(directory: string, digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return join(directory, "blobs", algorithm!, hex!);
}

/** Writes an OCI image layout at `directory` holding `entries`, each under its tag. */
export async function writeOciLayout(directory: string, entries: LayoutEntry[]): Promise<void> {
  await mkdir(join(directory, "blobs", "sha256"), { recursive: true });
  await writeFile(join(directory, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  for (const entry of entries) {
    for (const item of [entry.manifest, ...entry.blobs]) {
      await writeFile(blobPath(directory, item.digest), item.bytes);
    }
  }
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: entries.map((entry) => ({
      mediaType: entry.manifest.mediaType,
      digest: entry.manifest.digest,
      size: entry.manifest.size,
      annotations: { [refName]: entry.tag },
    })),
  };
  await writeFile(join(directory, "index.json"), JSON.stringify(index));
}

/** The digest `tag` names in the layout at `directory`. */
export async function layoutDigest(directory: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(directory, "index.json"), "utf8")) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((manifest) => manifest.annotations?.[refName] === tag);
  if (entry === undefined) throw new Error(`no tag ${tag} in the OCI layout at ${directory}`);
  return entry.digest;
}

/** The bytes of blob `digest` in the layout at `directory`. */
export function layoutBlob(directory: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(directory, digest));
}

/**
 * Asserts that the layout at `directory` (where a client pulled to) names each entry's manifest
 * under its tag and holds every blob of it with the right digest.
 */
export async function assertLayoutHolds(directory: string, entries: LayoutEntry[]): Promise<void> {
  for (const entry of entries) {
    assert.equal(await layoutDigest(directory, entry.tag), entry.manifest.digest, entry.tag);
    for (const item of [entry.manifest, ...entry.blobs]) {
      assert.equal(sha256(await layoutBlob(directory, item.digest)), item.digest);
    }
  }
}
