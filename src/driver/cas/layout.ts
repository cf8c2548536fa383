// From a storage path of the registry's layout back to what it means, for the CAS driver (seed
// 002's ParsePath). The layout itself lives only in src/storage/paths.ts; its parsers are reused
// here (this driver is the one that serves the layout instead of storing paths).

import {
  STORAGE_ROOT,
  isLayoutEntry,
  parseBlobPath,
  parseDigestPath,
} from "../../storage/paths.js";

/** What a path of the registry's tree is. */
export type LayoutPath =
  /** `blobs/<algorithm>/<hex[0:2]>/<hex>/data` */
  | { kind: "blob"; digest: string }
  /** `blobs/...` above a blob's data: a directory */
  | { kind: "blobDirectory"; digest?: string }
  /** `repositories/<name>/_layers/<algorithm>/<hex>/link` */
  | { kind: "layerLink"; repository: string; digest: string }
  /** `repositories/<name>/_manifests/revisions/<algorithm>/<hex>/link` */
  | { kind: "revisionLink"; repository: string; digest: string }
  /** `repositories/<name>/_manifests/tags/<tag>/current/link` */
  | { kind: "tagLink"; repository: string; tag: string }
  /** `repositories/<name>/_manifests/tags/<tag>/index/<algorithm>/<hex>/link` */
  | { kind: "tagIndexLink"; repository: string; tag: string; digest: string }
  /** `repositories/<name>/_manifests/referrers/...` (Berth's referrers index) */
  | { kind: "referrers"; repository: string }
  /** `repositories/<name>/_uploads[/...]`: kept in the local scratch area */
  | { kind: "upload"; repository: string; id?: string }
  /** Any other path of the registry's tree: not served */
  | { kind: "unserved" }
  /** A path outside `/docker/registry/v2` (Berth's own state): kept in the local scratch area */
  | { kind: "local" };

function digestOf(path: string): string | undefined {
  return parseDigestPath(path)?.digest;
}

/** The kind of `path`, with the repository, tag and digest it names. */
export function parseLayoutPath(path: string): LayoutPath {
  if (path !== STORAGE_ROOT && !path.startsWith(`${STORAGE_ROOT}/`)) {
    return isAncestor(path) ? { kind: "unserved" } : { kind: "local" };
  }
  const rest = path.slice(STORAGE_ROOT.length + 1).split("/");
  if (rest[0] === "blobs") return blobPath(path, rest);
  if (rest[0] !== "repositories") return { kind: "unserved" };
  const at = rest.findIndex((part, index) => index > 0 && isLayoutEntry(part));
  if (at < 2) return { kind: "unserved" };
  const repository = rest.slice(1, at).join("/");
  const below = rest.slice(at);
  const linkDirectory = path.slice(0, -"/link".length);
  switch (below[0]) {
    case "_uploads":
      return { kind: "upload", repository, id: below[1] };
    case "_layers": {
      const digest = digestOf(linkDirectory);
      if (below.length === 4 && below[3] === "link" && digest) {
        return { kind: "layerLink", repository, digest };
      }
      return { kind: "unserved" };
    }
    case "_manifests":
      return manifestPath(repository, below, linkDirectory);
    default:
      return { kind: "unserved" };
  }
}

/** `/`, `/docker`, `/docker/registry`: above the registry's tree. */
function isAncestor(path: string): boolean {
  return path !== "/" && STORAGE_ROOT.startsWith(`${path}/`);
}

function blobPath(path: string, rest: string[]): LayoutPath {
  if (rest.length === 5 && rest[4] === "data") {
    const digest = parseBlobPath(path.slice(0, -"/data".length))?.digest;
    if (digest && rest[2] === digest.split(":")[1]!.slice(0, 2)) return { kind: "blob", digest };
    return { kind: "unserved" };
  }
  if (rest.length === 4) {
    const digest = parseBlobPath(path)?.digest;
    return digest ? { kind: "blobDirectory", digest } : { kind: "unserved" };
  }
  return rest.length < 4 ? { kind: "blobDirectory" } : { kind: "unserved" };
}

function manifestPath(repository: string, below: string[], linkDirectory: string): LayoutPath {
  if (below[1] === "revisions") {
    const digest = digestOf(linkDirectory);
    if (below.length === 5 && below[4] === "link" && digest) {
      return { kind: "revisionLink", repository, digest };
    }
  } else if (below[1] === "tags" && below[2] !== undefined) {
    const tag = below[2];
    if (below.length === 5 && below[3] === "current" && below[4] === "link") {
      return { kind: "tagLink", repository, tag };
    }
    const digest = digestOf(linkDirectory);
    if (below.length === 7 && below[3] === "index" && below[6] === "link" && digest) {
      return { kind: "tagIndexLink", repository, tag, digest };
    }
  } else if (below[1] === "referrers") {
    return { kind: "referrers", repository };
  }
  return { kind: "unserved" };
}
