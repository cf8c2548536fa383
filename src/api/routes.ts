// Routing of `/v2/...` paths. Repository names contain slashes, so a path is read from the right:
// the last one or two components say which endpoint it is, everything between `/v2/` and them is
// the name. A handful of string operations, no regular expressions, no allocation beyond the
// returned route: this runs on every request.

/**
 * The endpoints of the OCI Distribution API, and Berth's extension under `/v2/_berth/` (a name no
 * repository can have, as with zot's `/v2/_zot/`): `tagDetails` at `/v2/_berth/tags/<name>`,
 * `repositoryUsage` at `/v2/_berth/usage/<name>`.
 */
export type RouteKind =
  | "base"
  | "catalog"
  | "tags"
  | "manifest"
  | "blob"
  | "uploadStart"
  | "upload"
  | "referrers"
  | "tagDetails"
  | "repositoryUsage";

/** A routed path: the endpoint, the repository name and the last component (reference, digest, id). */
export interface Route {
  kind: RouteKind;
  /** The repository name; "" for `base` and `catalog`. */
  name: string;
  /** The tag or digest (manifest), digest (blob, referrers) or upload id; "" where there is none. */
  argument: string;
}

/** The methods each endpoint answers, for the 405 response's `Allow` header. */
export const ALLOWED_METHODS: Readonly<Record<RouteKind, string>> = {
  base: "GET, HEAD",
  catalog: "GET, HEAD",
  tags: "GET, HEAD",
  manifest: "GET, HEAD, PUT, DELETE",
  blob: "GET, HEAD, DELETE",
  uploadStart: "POST",
  upload: "GET, PATCH, PUT, DELETE",
  referrers: "GET, HEAD",
  tagDetails: "GET, HEAD",
  repositoryUsage: "GET, HEAD",
};

/** Each endpoint's name in metrics (distribution's route names, `-` as `_`). */
export const HANDLER_NAMES: Readonly<Record<RouteKind, string>> = {
  base: "base",
  catalog: "catalog",
  tags: "tags",
  manifest: "manifest",
  blob: "blob",
  uploadStart: "blob_upload",
  upload: "blob_upload_chunk",
  referrers: "referrers",
  tagDetails: "berth_tag_details",
  repositoryUsage: "berth_repository_usage",
};

const PREFIX = "/v2/";
const EXTENSION_TAGS = "/v2/_berth/tags/";
const EXTENSION_USAGE = "/v2/_berth/usage/";

/**
 * Routes a request path (without its query). Null when the path is no endpoint of the API. The
 * name is returned as found; validating it is the handler's job, so a bad name is NAME_INVALID
 * rather than an unknown route.
 */
export function route(path: string): Route | null {
  if (!path.startsWith(PREFIX))
    return path === "/v2" ? { kind: "base", name: "", argument: "" } : null;
  if (path.length === PREFIX.length) return { kind: "base", name: "", argument: "" };
  if (path === "/v2/_catalog") return { kind: "catalog", name: "", argument: "" };
  if (path.startsWith(EXTENSION_TAGS)) {
    const name = path.slice(EXTENSION_TAGS.length);
    return name === "" ? null : { kind: "tagDetails", name, argument: "" };
  }
  if (path.startsWith(EXTENSION_USAGE)) {
    const name = path.slice(EXTENSION_USAGE.length);
    return name === "" ? null : { kind: "repositoryUsage", name, argument: "" };
  }

  // Trailing slash: only the upload start has one (`/blobs/uploads/`).
  if (path.endsWith("/blobs/uploads/")) {
    return named("uploadStart", path, path.length - "/blobs/uploads/".length, "");
  }
  if (path.endsWith("/blobs/uploads")) {
    return named("uploadStart", path, path.length - "/blobs/uploads".length, "");
  }
  if (path.endsWith("/tags/list"))
    return named("tags", path, path.length - "/tags/list".length, "");

  const lastSlash = path.lastIndexOf("/");
  if (lastSlash === path.length - 1) return null;
  const argument = decodeComponent(path.slice(lastSlash + 1));
  const kindSlash = path.lastIndexOf("/", lastSlash - 1);
  if (kindSlash < PREFIX.length) return null;
  const kind = path.slice(kindSlash + 1, lastSlash);
  switch (kind) {
    case "manifests":
      return named("manifest", path, kindSlash, argument);
    case "blobs":
      return named("blob", path, kindSlash, argument);
    case "referrers":
      return named("referrers", path, kindSlash, argument);
    case "uploads": {
      const blobsSlash = path.lastIndexOf("/", kindSlash - 1);
      if (blobsSlash < PREFIX.length || path.slice(blobsSlash + 1, kindSlash) !== "blobs")
        return null;
      return named("upload", path, blobsSlash, argument);
    }
    default:
      return null;
  }
}

/** A route whose name runs from after `/v2/` to `end`; null when that name is empty. */
function named(kind: RouteKind, path: string, end: number, argument: string): Route | null {
  if (end <= PREFIX.length) return null;
  return { kind, name: path.slice(PREFIX.length, end), argument };
}

/** Clients may percent-encode the `:` of a digest; anything undecodable stays as sent. */
function decodeComponent(component: string): string {
  if (!component.includes("%")) return component;
  try {
    return decodeURIComponent(component);
  } catch {
    return component;
  }
}
