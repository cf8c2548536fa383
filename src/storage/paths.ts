// The storage layout: the only place that turns what the registry means (a blob, a repository's
// link to it, a tag, an upload) into a storage path. It is distribution's layout byte for byte
// (registry/storage/paths.go), so a root written by one is served by the other:
//
//   /docker/registry/v2/
//     blobs/<algorithm>/<first two hex>/<hex>/data             the bytes of every blob, stored once
//     repositories/<name>/                                     <name> may have several components
//       _layers/<algorithm>/<hex>/link                         blob linked into the repository
//       _manifests/revisions/<algorithm>/<hex>/link            manifest revision in the repository
//       _manifests/tags/<tag>/current/link                     the manifest the tag points at
//       _manifests/tags/<tag>/index/<algorithm>/<hex>/link     every manifest the tag pointed at
//       _manifests/referrers/<algorithm>/<subject hex>/<algorithm>/<hex>/link
//                                                              Berth's: a manifest whose `subject`
//                                                              is <subject hex> (see below)
//       _uploads/<id>/data                                     the bytes received so far
//       _uploads/<id>/startedat                                RFC 3339 time the upload started
//       _uploads/<id>/hashstates/<algorithm>/<offset>          distribution's saved hash states;
//                                                              Berth never writes these (see below)
//
// Link files hold `<algorithm>:<hex>` with no newline.
//
// `_manifests/referrers` is Berth's addition (distribution 2.8 and 3.x keep no referrers index);
// distribution never lists or reads it: its catalog skips every `_` directory, its tag and revision
// stores read only `tags` and `revisions`. Berth does not write `hashstates`: Node cannot serialize
// a hash's state, so the running hash lives in process memory and an upload resumed elsewhere is
// re-hashed from its data at completion. Distribution treats a missing hash state the same way
// (it re-hashes from the data), and uploads are never shared between implementations mid-flight.

import type { ParsedDigest } from "./digest.js";

/** The root of everything the registry stores, as distribution names it. */
export const STORAGE_ROOT = "/docker/registry/v2";

const BLOBS = `${STORAGE_ROOT}/blobs`;
const REPOSITORIES = `${STORAGE_ROOT}/repositories`;

/** `<algorithm>/<hex>`: how a digest appears in repository paths. */
function digestComponents(digest: ParsedDigest): string {
  return `${digest.algorithm}/${digest.hex}`;
}

function repository(name: string): string {
  return `${REPOSITORIES}/${name}`;
}

/** Paths of the storage layout. Names and tags must have been validated. */
export const paths = {
  blobsRoot: (): string => BLOBS,
  /** `blobs/<algorithm>`: the blobs of one algorithm, by two-hex prefix. */
  blobAlgorithm: (algorithm: string): string => `${BLOBS}/${algorithm}`,
  /** `blobs/<algorithm>/<hex[0:2]>/<hex>`: a blob's directory. */
  blob: (digest: ParsedDigest): string =>
    `${BLOBS}/${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`,
  blobData: (digest: ParsedDigest): string => `${paths.blob(digest)}/data`,

  repositoriesRoot: (): string => REPOSITORIES,
  repository,

  /** `_layers`: the blobs linked into a repository. */
  layers: (name: string): string => `${repository(name)}/_layers`,
  layerLinkDirectory: (name: string, digest: ParsedDigest): string =>
    `${repository(name)}/_layers/${digestComponents(digest)}`,
  layerLink: (name: string, digest: ParsedDigest): string =>
    `${paths.layerLinkDirectory(name, digest)}/link`,

  manifests: (name: string): string => `${repository(name)}/_manifests`,
  revisions: (name: string): string => `${repository(name)}/_manifests/revisions`,
  revision: (name: string, digest: ParsedDigest): string =>
    `${repository(name)}/_manifests/revisions/${digestComponents(digest)}`,
  revisionLink: (name: string, digest: ParsedDigest): string =>
    `${paths.revision(name, digest)}/link`,

  tags: (name: string): string => `${repository(name)}/_manifests/tags`,
  tag: (name: string, tag: string): string => `${repository(name)}/_manifests/tags/${tag}`,
  tagCurrentLink: (name: string, tag: string): string => `${paths.tag(name, tag)}/current/link`,
  tagIndexEntry: (name: string, tag: string, digest: ParsedDigest): string =>
    `${paths.tag(name, tag)}/index/${digestComponents(digest)}`,
  tagIndexEntryLink: (name: string, tag: string, digest: ParsedDigest): string =>
    `${paths.tagIndexEntry(name, tag, digest)}/link`,

  /** The referrers of `subject`: one directory per referring manifest. */
  referrers: (name: string, subject: ParsedDigest): string =>
    `${repository(name)}/_manifests/referrers/${digestComponents(subject)}`,
  referrer: (name: string, subject: ParsedDigest, referrer: ParsedDigest): string =>
    `${paths.referrers(name, subject)}/${digestComponents(referrer)}`,
  referrerLink: (name: string, subject: ParsedDigest, referrer: ParsedDigest): string =>
    `${paths.referrer(name, subject, referrer)}/link`,

  uploads: (name: string): string => `${repository(name)}/_uploads`,
  upload: (name: string, id: string): string => `${repository(name)}/_uploads/${id}`,
  uploadData: (name: string, id: string): string => `${paths.upload(name, id)}/data`,
  uploadStartedAt: (name: string, id: string): string => `${paths.upload(name, id)}/startedat`,
} as const;

/** The last component of a path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}
