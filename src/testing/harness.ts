// Test support for the API's HTTP tests: a registry on 127.0.0.1 (startRegistry: the API over the
// real storage layer over the inmemory driver), a fetch wrapper, and builders for blobs, images and
// artifacts as the conformance suite pushes them.

import type { ErrorCode } from "../api/index.js";
import { startRegistry } from "../server/index.js";
import { ManifestMediaType, type RegistryStorage } from "../storage/index.js";
import { sha256 } from "./images.js";

export { sha256 };

/** A running registry for one test. */
export interface TestRegistry {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  storage: RegistryStorage;
  /** Sends a request to `path` (relative to the registry) without following redirects. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export interface TestRegistryOptions {
  deleteEnabled?: boolean;
  readOnly?: boolean;
  redirect?: boolean;
  headers?: Record<string, string[]>;
  /** The registered name of the storage driver; default "inmemory" (a fresh one per registry). */
  driver?: string;
  /** The driver's parameters. */
  parameters?: Record<string, unknown>;
  /** config.yml's `auth` section. */
  auth?: Record<string, unknown>;
  /** An Authorization header `fetch` sends unless the request has its own. */
  authorization?: string;
}

/** Starts Berth as an embedding project would (startRegistry), quiet, on a free loopback port. */
export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const running = await startRegistry({
    driver: options.driver ?? "inmemory",
    parameters: options.parameters,
    deleteEnabled: options.deleteEnabled ?? true,
    readOnly: options.readOnly ?? false,
    redirect: options.redirect ?? true,
    headers: options.headers,
    auth: options.auth,
    logLevel: "silent",
  });
  const withAuthorization = (init: RequestInit | undefined): RequestInit | undefined => {
    if (options.authorization === undefined) return init;
    const headers = new Headers(init?.headers);
    if (!headers.has("authorization")) headers.set("authorization", options.authorization);
    return { ...init, headers };
  };
  return {
    url: running.url,
    storage: running.storage,
    fetch: (path, init) =>
      fetch(running.url + path, { redirect: "manual", ...withAuthorization(init) }),
    close: () => running.close(),
  };
}

/** The value of a Basic Authorization header. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/** The first error code of an error response's envelope. */
export async function errorCode(response: Response): Promise<ErrorCode> {
  const body = (await response.json()) as { errors: { code: ErrorCode; message: string }[] };
  return body.errors[0]!.code;
}

/** Pushes `content` as one blob into `name` (POST then PUT) and returns its digest. */
export async function pushBlob(
  registry: TestRegistry,
  name: string,
  content: Uint8Array | string,
): Promise<string> {
  const digest = sha256(content);
  const started = await registry.fetch(`/v2/${name}/blobs/uploads/`, { method: "POST" });
  const location = started.headers.get("location")!;
  const finished = await registry.fetch(`${location}?digest=${digest}`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
    body: content,
  });
  if (finished.status !== 201)
    throw new Error(`blob push failed: ${finished.status} ${await finished.text()}`);
  return digest;
}

/** The error codes the conformance suite accepts: the OCI Distribution Spec's, as Berth names them. */
export const SPEC_ERROR_CODES: readonly ErrorCode[] = [
  "BLOB_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "BLOB_UPLOAD_UNKNOWN",
  "DIGEST_INVALID",
  "MANIFEST_BLOB_UNKNOWN",
  "MANIFEST_INVALID",
  "MANIFEST_UNKNOWN",
  "MANIFEST_UNVERIFIED",
  "NAME_INVALID",
  "NAME_UNKNOWN",
  "SIZE_INVALID",
  "TAG_INVALID",
  "UNAUTHORIZED",
  "DENIED",
  "UNSUPPORTED",
];

export const OCI_MANIFEST: string = ManifestMediaType.OciManifest;
export const OCI_INDEX: string = ManifestMediaType.OciIndex;
export const DOCKER_MANIFEST: string = ManifestMediaType.DockerManifest;
export const DOCKER_MANIFEST_LIST: string = ManifestMediaType.DockerManifestList;

/** A pushed image manifest: its bytes and digest. */
export interface PushedManifest {
  content: string;
  digest: string;
}

/**
 * Pushes a config and a layer into `name` and returns an OCI image manifest referring to them (not
 * yet pushed). `seed` makes the config, and so the manifest digest, unique.
 */
export async function buildImage(
  registry: TestRegistry,
  name: string,
  seed: string,
  extra: Record<string, unknown> = {},
  mediaType = OCI_MANIFEST,
): Promise<PushedManifest> {
  const config = JSON.stringify({ architecture: "amd64", os: "linux", author: seed });
  const layer = `layer of ${seed}`;
  const configDigest = await pushBlob(registry, name, config);
  const layerDigest = await pushBlob(registry, name, layer);
  const docker = mediaType === DOCKER_MANIFEST;
  const content = JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: docker
        ? "application/vnd.docker.container.image.v1+json"
        : "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: Buffer.byteLength(config),
    },
    layers: [
      {
        mediaType: docker
          ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
          : "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: layerDigest,
        size: Buffer.byteLength(layer),
      },
    ],
    ...extra,
  });
  return { content, digest: sha256(content) };
}

/** PUTs a manifest under `reference` and returns the response. */
export function putManifest(
  registry: TestRegistry,
  name: string,
  reference: string,
  content: string,
  mediaType = OCI_MANIFEST,
): Promise<Response> {
  return registry.fetch(`/v2/${name}/manifests/${reference}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: content,
  });
}

/** Builds and pushes an image under `tag`; fails the test when the registry refuses it. */
export async function pushImage(
  registry: TestRegistry,
  name: string,
  tag: string,
  extra: Record<string, unknown> = {},
): Promise<PushedManifest> {
  const image = await buildImage(registry, name, `${name}:${tag}:${JSON.stringify(extra)}`, extra);
  const response = await putManifest(registry, name, tag, image.content);
  if (response.status !== 201)
    throw new Error(`manifest push failed: ${response.status} ${await response.text()}`);
  return image;
}
