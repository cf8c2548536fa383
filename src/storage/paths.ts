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
// Beside distribution's tree, garbage collection keeps its own state under `/berth/gc` (distribution
// never reads outside `/docker/registry/v2`; see docs/gc.md):
//
//   /berth/gc/
//     lease                                  who collects now: JSON {owner, id, expires}
//     lease-takeover/<id>                    the one replica allowed to replace expired lease <id>
//     clock                                  rewritten at each mark: its modTime is the backend's now
//     refreshed/<algorithm>/<hex>            modTime: when a push, mount or HEAD last relied on <hex>
//     trash/<algorithm>/<hex>                blob data being swept, restored if a push raced
//
// `_manifests/referrers` is Berth's addition (distribution 2.8 and 3.x keep no referrers index);
// distribution never lists or reads it: its catalog skips every `_` directory, its tag and revision
// stores read only `tags` and `revisions`. Berth does not write `hashstates`: Node cannot serialize
// a hash's state, so the running hash lives in process memory and an upload resumed elsewhere is
// re-hashed from its data at completion. Distribution treats a missing hash state the same way
// (it re-hashes from the data), and uploads are never shared between implementations mid-flight.
//
// Outside distribution's tree, Berth's own: `/berth/health/<instance>`, the file the storage driver
// health check (`health.storagedriver`) writes once and reads back (each check writes `<instance>.write`);
// one per running registry;
// `/berth/p2p/metainfo/<algorithm>/<hex>`, the BitTorrent metainfo (piece hashes) of a blob an
// origin seeds to its peers (src/p2p), computed once per blob; and
// `/berth/notifications/<endpoint>/<sequence>`, the events an endpoint has not acknowledged yet
// (one file each, numbered in order), so that they survive a restart; and
// `/berth/pulls/<name>/_pulls.json`, when the tags and manifests of repository <name> were last
// pulled (pulls.ts), for retention's `pulledWithin` (distribution keeps no pull times).

import { tryParseDigest, type ParsedDigest } from "./digest.js";

/** The root of everything the registry stores, as distribution names it. */
export const STORAGE_ROOT = "/docker/registry/v2";

const BLOBS = `${STORAGE_ROOT}/blobs`;
const REPOSITORIES = `${STORAGE_ROOT}/repositories`;
const LAYERS = "_layers";
const MANIFESTS = "_manifests";
const UPLOADS = "_uploads";
const GC = "/berth/gc";

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
  layers: (name: string): string => `${repository(name)}/${LAYERS}`,
  layerLinkDirectory: (name: string, digest: ParsedDigest): string =>
    `${paths.layers(name)}/${digestComponents(digest)}`,
  layerLink: (name: string, digest: ParsedDigest): string =>
    `${paths.layerLinkDirectory(name, digest)}/link`,

  manifests: (name: string): string => `${repository(name)}/${MANIFESTS}`,
  revisions: (name: string): string => `${paths.manifests(name)}/revisions`,
  revision: (name: string, digest: ParsedDigest): string =>
    `${paths.revisions(name)}/${digestComponents(digest)}`,
  revisionLink: (name: string, digest: ParsedDigest): string =>
    `${paths.revision(name, digest)}/link`,

  tags: (name: string): string => `${paths.manifests(name)}/tags`,
  tag: (name: string, tag: string): string => `${paths.tags(name)}/${tag}`,
  tagCurrentLink: (name: string, tag: string): string => `${paths.tag(name, tag)}/current/link`,
  tagIndexEntry: (name: string, tag: string, digest: ParsedDigest): string =>
    `${paths.tag(name, tag)}/index/${digestComponents(digest)}`,
  tagIndexEntryLink: (name: string, tag: string, digest: ParsedDigest): string =>
    `${paths.tagIndexEntry(name, tag, digest)}/link`,

  /** The referrers of `subject`: one directory per referring manifest. */
  referrers: (name: string, subject: ParsedDigest): string =>
    `${paths.manifests(name)}/referrers/${digestComponents(subject)}`,
  referrer: (name: string, subject: ParsedDigest, referrer: ParsedDigest): string =>
    `${paths.referrers(name, subject)}/${digestComponents(referrer)}`,
  referrerLink: (name: string, subject: ParsedDigest, referrer: ParsedDigest): string =>
    `${paths.referrer(name, subject, referrer)}/link`,

  uploads: (name: string): string => `${repository(name)}/${UPLOADS}`,
  /** An upload's directory; also the key of what this process keeps about the upload. */
  upload: (name: string, id: string): string => `${paths.uploads(name)}/${id}`,
  uploadData: (name: string, id: string): string => `${paths.upload(name, id)}/data`,
  uploadStartedAt: (name: string, id: string): string => `${paths.upload(name, id)}/startedat`,

  gcLease: (): string => `${GC}/lease`,
  gcLeaseTakeover: (id: string): string => `${GC}/lease-takeover/${id}`,
  gcLeaseTakeovers: (): string => `${GC}/lease-takeover`,
  gcClock: (): string => `${GC}/clock`,
  /** The refresh record of a digest: its modTime is the last time a client relied on it. */
  gcRefreshed: (digest: ParsedDigest): string => `${GC}/refreshed/${digestComponents(digest)}`,
  gcRefreshedRoot: (): string => `${GC}/refreshed`,
  /** Where the sweep puts a blob's data until it knows no push raced with it. */
  gcTrash: (digest: ParsedDigest): string => `${GC}/trash/${digestComponents(digest)}`,
  gcTrashRoot: (): string => `${GC}/trash`,
  /** When each repository of a pull-through cache was last pulled (src/proxy/expiry.ts). */
  proxyPulls: (): string => "/berth/proxy/pulls.json",
  /** The health probe of one running registry (`instance`: a UUID), outside distribution's tree. */
  healthProbe: (instance: string): string => `/berth/health/${instance}`,
  /** The file each health check writes (the probe itself is written once, then only read). */
  healthProbeWrite: (instance: string): string => `/berth/health/${instance}.write`,
  /** When the tags and manifests of repository `name` were last pulled (`_` ends a repository name). */
  pulls: (name: string): string => `/berth/pulls/${name}/_pulls.json`,
  /** The BitTorrent metainfo of a blob an origin seeds (src/p2p). */
  p2pMetainfo: (digest: ParsedDigest): string => `/berth/p2p/metainfo/${digestComponents(digest)}`,
  /** The spool of the notification endpoint `endpoint` (a path component), outside distribution's tree. */
  notificationSpool: (endpoint: string): string => `/berth/notifications/${endpoint}`,
} as const;

/** Where a pull-through cache keeps when each of its repositories was last pulled. */
export function proxyPullsPath(): string {
  return paths.proxyPulls();
}

/** Where the notification endpoint `endpoint` keeps its undelivered events (see the tree above). */
export function notificationSpoolPath(endpoint: string): string {
  return paths.notificationSpool(endpoint);
}

/** Where an origin keeps the BitTorrent metainfo of the blob `digest`, and the blob's data path. */
export function p2pBlobPaths(digest: string): { metainfo: string; data: string } | undefined {
  const parsed = tryParseDigest(digest);
  return parsed && { metainfo: paths.p2pMetainfo(parsed), data: paths.blobData(parsed) };
}

/** The last component of a path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

// Parsers: from paths (and directory listings) back to what they mean.

/**
 * True for an entry the layout puts in a repository's directory (`_layers`, `_manifests`,
 * `_uploads`): name components never start with `_`, so such an entry is never a nested repository.
 */
export function isLayoutEntry(entry: string): boolean {
  return entry.startsWith("_");
}

/**
 * True when a directory with these entries (base names) is a repository: it holds `_layers`
 * (distribution's rule) or `_manifests`.
 */
export function isRepositoryListing(entries: string[]): boolean {
  return entries.some((entry) => entry === LAYERS || entry === MANIFESTS);
}

/** The repository whose `_uploads` directory `path` is; undefined for any other path. */
export function parseUploadsPath(path: string): string | undefined {
  const prefix = `${REPOSITORIES}/`;
  const suffix = `/${UPLOADS}`;
  if (!path.startsWith(prefix) || !path.endsWith(suffix)) return undefined;
  const name = path.slice(prefix.length, -suffix.length);
  return name === "" ? undefined : name;
}

/** The digest of the blob whose directory is `path` (`blobs/<algorithm>/<hex[0:2]>/<hex>`). */
export function parseBlobPath(path: string): ParsedDigest | undefined {
  const parts = path.split("/");
  return tryParseDigest(`${parts.at(-3)}:${parts.at(-1)}`);
}

/**
 * The digest named by the last two components `<algorithm>/<hex>` of `path`: a layer link's,
 * revision's, tag index entry's or referrer's directory.
 */
export function parseDigestPath(path: string): ParsedDigest | undefined {
  const parts = path.split("/");
  return tryParseDigest(`${parts.at(-2)}:${parts.at(-1)}`);
}
