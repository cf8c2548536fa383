// Berth's extension endpoints for the web UI. `GET /v2/_berth/tags/<name>?n=&last=`, one page of a
// repository's tags with what the OCI API cannot say in one request per page: the digest each tag
// points at, when it was pushed, the manifest's media type and artifact type, the image's size
// (manifest, config and layers; for an index, the sum over its manifests) and its platforms. It
// needs what the tags list needs (pull on the repository) and says whether the caller may delete.
// `GET /v2/_berth/usage/<name>`: the distinct blobs the repository links and their bytes (pull).

import {
  baseMediaType,
  isRegistryError,
  RegistryErrorCode,
  type Repository,
} from "../storage/index.js";
import { sendJson, type ApiContext, type ApiRequest } from "./context.js";
import { ApiError } from "./errors.js";
import type { Platform, RepositoryUsagePage, TagDetail, TagDetailsPage } from "./berth-types.js";
import { parsePage } from "./protocol.js";

/** Tags per page when the client does not say `n`, and the most it may ask for. */
export const DEFAULT_TAG_DETAILS = 25;
export const MAX_TAG_DETAILS = 100;
/** An index with more manifests than this gets no size (each would be read). */
const MAX_INDEX_MANIFESTS = 64;
/** Image configs larger than this are not read for their platform. */
const MAX_CONFIG_READ = 64 * 1024;
/** Tags described at once. */
const CONCURRENCY = 8;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sizeOf(value: unknown): number {
  return isObject(value) && typeof value.size === "number" ? value.size : 0;
}

function platformOf(value: unknown): Platform | undefined {
  if (!isObject(value)) return undefined;
  const { os, architecture, variant } = value;
  if (typeof os !== "string" || typeof architecture !== "string") return undefined;
  if (os === "unknown" && architecture === "unknown") return undefined;
  return typeof variant === "string" && variant !== ""
    ? { os, architecture, variant }
    : { os, architecture };
}

/** The manifest by digest, parsed; undefined when gone or not JSON. */
async function readManifest(
  repository: Repository,
  digest: string,
): Promise<{ mediaType: string; length: number; document: Json } | undefined> {
  try {
    const stored = await repository.manifests.get(digest);
    const document: unknown = JSON.parse(stored.content.toString("utf8"));
    if (!isObject(document)) return undefined;
    return { mediaType: stored.mediaType, length: stored.content.length, document };
  } catch (error) {
    if (isRegistryError(error, RegistryErrorCode.ManifestUnknown) || error instanceof SyntaxError) {
      return undefined;
    }
    throw error;
  }
}

/** The platform an image config states, when it is small and an image config at all. */
async function configPlatform(repository: Repository, config: unknown): Promise<Platform[]> {
  if (!isObject(config) || typeof config.digest !== "string") return [];
  const type = config.mediaType;
  const imageConfig =
    type === "application/vnd.oci.image.config.v1+json" ||
    type === "application/vnd.docker.container.image.v1+json";
  if (!imageConfig || sizeOf(config) > MAX_CONFIG_READ) return [];
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await repository.blobs.reader(config.digest)) {
      chunks.push(chunk as Buffer);
    }
    const platform = platformOf(JSON.parse(Buffer.concat(chunks).toString("utf8")));
    return platform === undefined ? [] : [platform];
  } catch (error) {
    if (isRegistryError(error, RegistryErrorCode.BlobUnknown) || error instanceof SyntaxError) {
      return [];
    }
    throw error;
  }
}

function imageSize(length: number, document: Json): number {
  const layers = Array.isArray(document.layers) ? document.layers : [];
  return length + sizeOf(document.config) + layers.reduce((sum: number, l) => sum + sizeOf(l), 0);
}

async function describe(repository: Repository, tag: string): Promise<TagDetail | undefined> {
  let digest: string;
  let pushedAt: Date;
  try {
    [digest, pushedAt] = await Promise.all([
      repository.tags.resolve(tag),
      repository.tags.pushedAt(tag),
    ]);
  } catch (error) {
    // Untagged between the list and now.
    if (isRegistryError(error, RegistryErrorCode.ManifestUnknown)) return undefined;
    throw error;
  }
  const manifest = await readManifest(repository, digest);
  if (manifest === undefined) return undefined;
  const { document, length } = manifest;
  const mediaType = baseMediaType(manifest.mediaType);
  const detail: TagDetail = {
    name: tag,
    digest,
    mediaType,
    pushedAt: pushedAt.toISOString(),
    platforms: [],
  };
  if (typeof document.artifactType === "string") detail.artifactType = document.artifactType;
  const children = Array.isArray(document.manifests)
    ? (document.manifests as unknown[])
    : undefined;
  if (children === undefined) {
    detail.size = imageSize(length, document);
    detail.platforms = await configPlatform(repository, document.config);
    return detail;
  }
  detail.platforms = children.flatMap((child) => {
    const platform = isObject(child) ? platformOf(child.platform) : undefined;
    return platform === undefined ? [] : [platform];
  });
  if (children.length <= MAX_INDEX_MANIFESTS) {
    const sizes = await Promise.all(
      children.map(async (child) => {
        if (!isObject(child) || typeof child.digest !== "string") return 0;
        const inner = await readManifest(repository, child.digest);
        return inner === undefined ? sizeOf(child) : imageSize(inner.length, inner.document);
      }),
    );
    detail.size = sizes.reduce((sum, size) => sum + size, length);
  }
  return detail;
}

/** GET: one page of the repository's tags, described. NAME_UNKNOWN for no such repository. */
export async function listTagDetails(context: ApiContext, request: ApiRequest): Promise<void> {
  const { route, caller } = request;
  const page = parsePage(request.query);
  const n = page.n ?? DEFAULT_TAG_DETAILS;
  if (n > MAX_TAG_DETAILS) {
    throw new ApiError(
      "PAGINATION_NUMBER_INVALID",
      `at most ${MAX_TAG_DETAILS} tags per page, asked for ${n}`,
    );
  }
  const repository = context.storage.repository(route.name);
  let tags = await repository.tags.list();
  if (page.last !== undefined) {
    const last = page.last;
    tags = tags.filter((tag) => tag > last);
  }
  const headers: Record<string, string> = {};
  if (tags.length > n) {
    tags = tags.slice(0, n);
    if (n > 0) {
      const next = `${context.prefix}/v2/_berth/tags/${route.name}?n=${n}&last=${encodeURIComponent(tags[n - 1]!)}`;
      headers.Link = `<${next}>; rel="next"`;
    }
  }
  const details: TagDetail[] = [];
  for (let start = 0; start < tags.length; start += CONCURRENCY) {
    const batch = await Promise.all(
      tags.slice(start, start + CONCURRENCY).map((tag) => describe(repository, tag)),
    );
    for (const detail of batch) if (detail !== undefined) details.push(detail);
  }
  const body: TagDetailsPage = {
    name: route.name,
    deleteEnabled: context.deleteEnabled,
    mayDelete: context.deleteEnabled && caller.may(route.name, "delete"),
    tags: details,
  };
  sendJson(request, body, headers);
}

/** GET: what the repository holds in storage. NAME_UNKNOWN for no such repository. */
export async function repositoryUsage(context: ApiContext, request: ApiRequest): Promise<void> {
  const { name } = request.route;
  const usage = await context.storage.repository(name).usage();
  const body: RepositoryUsagePage = { name, ...usage };
  sendJson(request, body);
}
