// Content discovery endpoints: the tags list `/v2/<name>/tags/list`, the catalog `/v2/_catalog`
// (both paginated with `n` and `last`, with a `Link: <...>; rel="next"` header while more remain)
// and the referrers list `/v2/<name>/referrers/<digest>`.

import {
  isRegistryError,
  ManifestMediaType,
  RegistryErrorCode,
  type Descriptor,
} from "../storage/index.js";
import type { ApiContext, ApiRequest } from "./context.js";
import { sendJson } from "./context.js";
import { checkDigest, parsePage } from "./protocol.js";

/** Catalog entries returned when the client does not say `n` (distribution's default maximum). */
export const DEFAULT_CATALOG_ENTRIES = 1000;

function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}

/** GET: the repository's tags, sorted, paginated. NAME_UNKNOWN for a repository that does not exist. */
export async function listTags(context: ApiContext, request: ApiRequest): Promise<void> {
  const { route } = request;
  const page = parsePage(request.query);
  const repository = context.storage.repository(route.name);
  let tags = await repository.tags.list();
  if (page.last !== undefined) {
    const last = page.last;
    const start = tags.findIndex((tag) => tag > last);
    tags = start === -1 ? [] : tags.slice(start);
  }
  const headers: Record<string, string> = {};
  if (page.n !== undefined && tags.length > page.n) {
    tags = tags.slice(0, page.n);
    if (page.n > 0) {
      const path = `${context.prefix}/v2/${route.name}/tags/list`;
      headers.Link = nextLink(path, page.n, tags[page.n - 1]!);
    }
  }
  sendJson(request, { name: route.name, tags }, headers);
}

/** GET: repository names, sorted, paginated. */
export async function listCatalog(context: ApiContext, request: ApiRequest): Promise<void> {
  const page = parsePage(request.query);
  const limit = page.n ?? DEFAULT_CATALOG_ENTRIES;
  const headers: Record<string, string> = {};
  let repositories: string[] = [];
  if (limit > 0) {
    // One more than asked for tells whether another page follows.
    const { caller } = request;
    const include = caller.unrestricted ? undefined : (name: string) => caller.lists(name);
    repositories = await context.storage.catalog(limit + 1, page.last, include);
    if (repositories.length > limit) {
      repositories = repositories.slice(0, limit);
      headers.Link = nextLink(`${context.prefix}/v2/_catalog`, limit, repositories[limit - 1]!);
    }
  }
  sendJson(request, { repositories }, headers);
}

/**
 * GET: an OCI image index of the manifests whose subject is the digest, filtered by
 * `artifactType` when given (then `OCI-Filters-Applied: artifactType`). The spec forbids a 404
 * here: no referrers, or no such repository, is an empty index.
 */
export async function listReferrers(context: ApiContext, request: ApiRequest): Promise<void> {
  const { route, query } = request;
  const digest = route.argument;
  checkDigest(digest);
  const artifactType = query?.get("artifactType") || undefined;
  const repository = context.storage.repository(route.name);
  let manifests: Descriptor[];
  try {
    manifests = await repository.referrers(digest, artifactType);
  } catch (error) {
    if (!isRegistryError(error, RegistryErrorCode.NameUnknown)) throw error;
    manifests = [];
  }
  const headers: Record<string, string> = {};
  if (artifactType !== undefined) headers["OCI-Filters-Applied"] = "artifactType";
  const mediaType = ManifestMediaType.OciIndex;
  sendJson(request, { schemaVersion: 2, mediaType, manifests }, headers, mediaType);
}
