// Test support: OCI and Docker image content built in memory. Layers are real tar archives of
// random bytes (optionally gzipped), configs carry the layers' diff_ids, and manifests and indexes
// are serialized once so their bytes (and so their digests) are fixed. Nothing touches a registry
// here: tests push these bytes through Berth's storage layer, the HTTP API or a registry.

import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";

export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** Bytes with their descriptor. */
export interface Content {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** A single-platform image: its layers, config and manifest. */
export interface TestImage {
  layers: Content[];
  config: Content;
  manifest: Content;
}

/** A multi-platform image: an index (or Docker manifest list) over several images. */
export interface TestIndex {
  images: TestImage[];
  index: Content;
}

/** `sha256:<hex>` of `bytes` (a string counts as its UTF-8 bytes). */
export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** `bytes` as content of `mediaType`. */
export function content(mediaType: string, bytes: Uint8Array): Content {
  const buffer = Buffer.from(bytes);
  return { mediaType, digest: sha256(buffer), size: buffer.length, bytes: buffer };
}

/** The descriptor of `item` (what a manifest lists), with extra fields merged in. */
export function descriptor(
  item: Content,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { mediaType: item.mediaType, digest: item.digest, size: item.size, ...extra };
}

/** A JSON document as content (serialized once, so its digest is fixed). */
export function jsonContent(mediaType: string, value: unknown): Content {
  return content(mediaType, Buffer.from(JSON.stringify(value)));
}

/** A ustar archive holding one regular file `name` with `data`. */
export function tarWithFile(name: string, data: Uint8Array): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, "utf8");
  header.write("0000644\0", 100, "ascii"); // mode
  header.write("0000000\0", 108, "ascii"); // uid
  header.write("0000000\0", 116, "ascii"); // gid
  header.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124, "ascii");
  header.write("00000000000\0", 136, "ascii"); // mtime
  header.write("        ", 148, "ascii"); // checksum field counts as spaces while summing
  header.write("0", 156, "ascii"); // regular file
  header.write("ustar\0", 257, "ascii");
  header.write("00", 263, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

/** Options of `buildImage`. */
export interface ImageOptions {
  /** Number of layers; default 2. */
  layers?: number;
  /** Random bytes in each layer's file; default 4096. */
  layerSize?: number;
  /** "oci" (default) or "docker" (schema 2) media types. */
  format?: "oci" | "docker";
  /** Gzip the layers; default false for OCI, always true for Docker (its layer type is gzip). */
  gzip?: boolean;
  architecture?: string;
  os?: string;
  /** Annotations on the manifest (OCI only). */
  annotations?: Record<string, string>;
}

/** A single-platform image with random layers. */
export function buildImage(options: ImageOptions = {}): TestImage {
  const format = options.format ?? "oci";
  const gzip = format === "docker" ? true : (options.gzip ?? false);
  const layerType =
    format === "docker"
      ? MediaType.DockerLayerGzip
      : gzip
        ? MediaType.OciLayerGzip
        : MediaType.OciLayer;
  const tars = Array.from({ length: options.layers ?? 2 }, (_, index) =>
    tarWithFile(`file-${index}`, randomBytes(options.layerSize ?? 4096)),
  );
  const layers = tars.map((tar) => content(layerType, gzip ? gzipSync(tar) : tar));
  const architecture = options.architecture ?? "amd64";
  const os = options.os ?? "linux";
  const config = jsonContent(format === "docker" ? MediaType.DockerConfig : MediaType.OciConfig, {
    architecture,
    os,
    config: {},
    rootfs: { type: "layers", diff_ids: tars.map(sha256) },
  });
  const manifestType = format === "docker" ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest = jsonContent(manifestType, {
    schemaVersion: 2,
    mediaType: manifestType,
    config: descriptor(config),
    layers: layers.map((layer) => descriptor(layer)),
    ...(options.annotations && format === "oci" ? { annotations: options.annotations } : {}),
  });
  return { layers, config, manifest };
}

/** A multi-platform image: one image per platform (default linux/amd64 and linux/arm64). */
export function buildIndex(
  options: ImageOptions & { platforms?: { os: string; architecture: string }[] } = {},
): TestIndex {
  const platforms = options.platforms ?? [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64" },
  ];
  const images = platforms.map((platform) => buildImage({ ...options, ...platform }));
  const indexType = options.format === "docker" ? MediaType.DockerManifestList : MediaType.OciIndex;
  const index = jsonContent(indexType, {
    schemaVersion: 2,
    mediaType: indexType,
    manifests: images.map((image, i) => descriptor(image.manifest, { platform: platforms[i] })),
  });
  return { images, index };
}

/**
 * An OCI artifact manifest (artifactType with the empty config, as oras pushes), optionally
 * referring to `subject`. Returns the manifest and the blobs it needs (the empty config, `blobs`).
 */
export function buildArtifact(options: {
  artifactType: string;
  subject?: Content;
  blobs?: Content[];
  annotations?: Record<string, string>;
}): { manifest: Content; blobs: Content[] } {
  const empty = content(MediaType.OciEmpty, Buffer.from("{}"));
  const blobs = options.blobs ?? [];
  const manifest = jsonContent(MediaType.OciManifest, {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: options.artifactType,
    config: descriptor(empty),
    layers: blobs.length > 0 ? blobs.map((blob) => descriptor(blob)) : [descriptor(empty)],
    ...(options.subject ? { subject: descriptor(options.subject) } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  });
  return { manifest, blobs: [empty, ...blobs] };
}

/** What `pushImage` needs of a repository: the storage layer's Repository shape. */
interface PushTarget {
  blobs: {
    startUpload(): Promise<{
      append(data: AsyncIterable<Uint8Array>): Promise<number>;
      finish(digest: string, size?: number): Promise<unknown>;
    }>;
  };
  manifests: {
    put(content: Buffer, mediaType: string, options?: { tag?: string }): Promise<unknown>;
  };
}

/** Uploads `blob` into `repository` in one append. */
export async function pushBlob(repository: PushTarget, blob: Content): Promise<void> {
  const upload = await repository.blobs.startUpload();
  await upload.append(
    (async function* () {
      yield blob.bytes;
    })(),
  );
  await upload.finish(blob.digest, blob.size);
}

/** Pushes an image (layers, config, manifest) into `repository`, tagging it when `tag` is given. */
export async function pushImage(
  repository: PushTarget,
  image: TestImage,
  tag?: string,
): Promise<void> {
  for (const blob of [...image.layers, image.config]) await pushBlob(repository, blob);
  await repository.manifests.put(
    image.manifest.bytes,
    image.manifest.mediaType,
    tag ? { tag } : {},
  );
}

/** Pushes every image of `index`, then the index itself (tagged when `tag` is given). */
export async function pushIndex(
  repository: PushTarget,
  index: TestIndex,
  tag?: string,
): Promise<void> {
  for (const image of index.images) await pushImage(repository, image);
  await repository.manifests.put(index.index.bytes, index.index.mediaType, tag ? { tag } : {});
}
