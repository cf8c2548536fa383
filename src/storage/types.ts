// The public shape of the registry storage layer, shared by its implementation (this folder) and
// its user, the API layer. Everything here is about digests, repositories and media types; nothing
// about HTTP. Every method rejects with a RegistryError carrying the OCI error code named in its
// comment (other failures propagate as driver errors).

import type { Readable, Writable } from "node:stream";

/** A content digest as a string, `<algorithm>:<hex>` (sha256 or sha512). */
export type Digest = string;

/** An OCI descriptor: what a manifest says about one piece of content it refers to. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Record<string, unknown>;
  [extra: string]: unknown;
}

/** What the blob store knows about a stored blob. */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** Options of the registry storage layer. */
export interface RegistryStorageOptions {
  /** Allow deleting blobs and manifests (config `storage.delete.enabled`); default false. */
  deleteEnabled?: boolean;
  /** Refuse every mutation (config `storage.maintenance.readonly.enabled`); default false. */
  readOnly?: boolean;
  /**
   * The garbage collector's `delay` (config `storage.maintenance.gc.delay`), default one hour:
   * pushes refresh their protection every half of it. Must be the same on every replica and in
   * `berth garbage-collect` (see docs/gc.md).
   */
  gcDelayMs?: number;
  /**
   * Regular expressions on tags (config `storage.tags.immutable`): a tag matching one, once it
   * exists, is never moved to another manifest nor deleted (DENIED naming the rule); pushing the
   * same manifest again is accepted. Default none.
   */
  immutableTags?: string[];
  /** Storage quotas per repository pattern (config `storage.quotas`, docs/retention.md). */
  quotas?: QuotaRule[];
  /**
   * How long an upload that stored nothing yet stays known by its id: the purger's age (config
   * `storage.maintenance.uploadpurging.age`) when it removes uploads; default 7 days.
   */
  unstartedUploadMs?: number;
}

/**
 * A storage quota: the repositories it covers, as glob patterns on the name (`team-a/**`: every
 * repository below team-a; `*` stays within one component), and the bytes of distinct blobs
 * their manifests may reference together.
 */
export interface QuotaRule {
  repositories: string[];
  bytes: number;
}

/** What a quota's namespace holds now. */
export interface QuotaUsage {
  /** The rule's patterns. */
  repositories: string[];
  /** Bytes of the distinct blobs (manifests, configs, layers) its manifests reference. */
  bytes: number;
  /** The rule's limit. */
  limit: number;
  /** How many distinct blobs, and in how many repositories. */
  blobs: number;
  repositoryCount: number;
}

/**
 * Options of the calls that stream a blob's bytes. `signal` aborts the call (the client went
 * away): the driver stops the backend work, and the call rejects with its AbortedError. An
 * aborted append keeps what arrived (resumable); an aborted finish publishes nothing.
 */
export interface StreamOptions {
  signal?: AbortSignal;
}

/** An upload in progress: `_uploads/<id>` in a repository. */
export interface UploadSession {
  /** The upload's UUID. */
  readonly id: string;
  /** The repository the upload belongs to. */
  readonly repository: string;
  /** When the upload was started (from `startedat`). */
  readonly startedAt: Date;
  /** Bytes received so far: the offset the next chunk must start at. */
  readonly size: number;
  /**
   * Streams `data` onto the end of the upload, hashing as it goes, with backpressure. If `data`
   * fails or ends early (a client went away), what arrived is kept and the upload stays resumable;
   * the promise then rejects with that error. Resolves to the new size.
   */
  append(data: Readable | AsyncIterable<Uint8Array>, options?: StreamOptions): Promise<number>;
  /**
   * Completes the upload: checks `digest` (DIGEST_INVALID when malformed, of an unsupported
   * algorithm or not matching the bytes) and `size` when given (SIZE_INVALID), moves the bytes into
   * the blob store (or drops them when the blob exists already), links the blob into the repository
   * and removes the upload. On a digest or size mismatch nothing is stored, nothing is linked and
   * the upload is removed. `data`, when given, is a last chunk appended first (as `append`, also
   * when it fails), written by the same writer that publishes the data.
   */
  finish(
    digest: Digest,
    size?: number,
    data?: Readable | AsyncIterable<Uint8Array>,
    options?: StreamOptions,
  ): Promise<BlobInfo>;
  /** Removes the upload and everything it wrote. */
  cancel(): Promise<void>;
}

/** The blobs linked into one repository. */
export interface RepositoryBlobs {
  /** Size of a blob linked into this repository; BLOB_UNKNOWN if not linked (or not stored). */
  stat(digest: Digest): Promise<BlobInfo>;
  /**
   * `stat`'s answer when it needs no I/O (the storage layer's in-process caches know it), without
   * a promise; undefined otherwise, and then `stat` answers. Optional: a hot-path shortcut.
   */
  statCached?(digest: Digest): BlobInfo | undefined;
  /** The blob's bytes from `offset`; BLOB_UNKNOWN as for stat. */
  reader(digest: Digest, offset?: number): Promise<Readable>;
  /**
   * Writes `length` bytes of the blob (all when undefined) from `offset` to `destination`, without
   * ending it; BLOB_UNKNOWN as for stat. Faster than `reader` on drivers that can copy (see
   * StorageDriver.copyTo); rejects when `destination` closes or errors first.
   */
  copyTo(
    digest: Digest,
    destination: Writable,
    offset?: number,
    length?: number,
    options?: StreamOptions,
  ): Promise<void>;
  /** A URL to fetch the blob from directly, when the driver can give one; else null. */
  redirectURL(digest: Digest, method?: "GET" | "HEAD"): Promise<string | null>;
  /** Unlinks the blob from this repository; UNSUPPORTED unless delete is enabled; BLOB_UNKNOWN. */
  delete(digest: Digest): Promise<void>;
  /**
   * Links a blob that repository `from` has into this one (cross-repository mount). BLOB_UNKNOWN
   * when `from` does not have it (the API then falls back to a new upload). With `from` undefined
   * (a mount request without `from`), links the blob when the registry stores it at all: the
   * spec's automatic content discovery, which Berth can offer because it has no per-repository
   * access control to respect.
   */
  mount(from: string | undefined, digest: Digest): Promise<BlobInfo>;
  /** Starts a new upload; nothing is stored until its first bytes (upload.ts). */
  startUpload(): Promise<UploadSession>;
  /** Resumes an upload by UUID, also after a restart; BLOB_UPLOAD_UNKNOWN if there is none. */
  resumeUpload(id: string): Promise<UploadSession>;
}

/** A manifest as stored: its exact bytes, digest and media type. */
export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  content: Buffer;
}

/** What `putManifest` learned of a manifest while validating it. */
export interface PutManifestResult {
  digest: Digest;
  mediaType: string;
  /** The digest of the manifest's `subject`, when it has one (the API sends `OCI-Subject`). */
  subject?: Digest;
}

/** The manifests of one repository. */
export interface RepositoryManifests {
  /** True when a manifest revision with this digest is in the repository. */
  exists(digest: Digest): Promise<boolean>;
  /** The manifest by digest; MANIFEST_UNKNOWN if not in the repository. */
  get(digest: Digest): Promise<StoredManifest>;
  /**
   * `get`'s answer when it needs no I/O (the storage layer's in-process caches know it), without a
   * promise; undefined otherwise, and then `get` answers. Optional: a hot-path shortcut.
   */
  getCached?(digest: Digest): StoredManifest | undefined;
  /**
   * Validates and stores `content` (exact bytes) declared as `mediaType` (the request's
   * Content-Type; may be empty, then the manifest's own `mediaType` field decides), and tags it
   * with `tag` when given. MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID (when
   * `expectedDigest` is given and differs), SIZE_INVALID (over 4 MiB), TAG_INVALID. With
   * `verifyReferences: false` the referenced blobs and child manifests need not be in the
   * repository yet: a pull-through cache stores a manifest before the content it names, which it
   * fetches only when a client asks (distribution's proxy skips the check likewise).
   */
  put(
    content: Buffer,
    mediaType: string,
    options?: { tag?: string; expectedDigest?: Digest; verifyReferences?: boolean },
  ): Promise<PutManifestResult>;
  /**
   * Deletes the manifest revision and every tag pointing at it; UNSUPPORTED unless delete is
   * enabled; MANIFEST_UNKNOWN.
   */
  delete(digest: Digest): Promise<void>;
}

/** The tags of one repository. */
export interface RepositoryTags {
  /** Every tag, sorted; NAME_UNKNOWN when the repository does not exist. */
  list(): Promise<string[]>;
  /** The digest a tag points at; MANIFEST_UNKNOWN if no such tag. */
  resolve(tag: string): Promise<Digest>;
  /** Points `tag` at `digest` (a manifest already in the repository). TAG_INVALID. */
  tag(tag: string, digest: Digest): Promise<void>;
  /** Removes a tag (UNSUPPORTED unless delete is enabled); MANIFEST_UNKNOWN if no such tag. */
  untag(tag: string): Promise<void>;
  /** The tags pointing at `digest`, sorted. */
  lookup(digest: Digest): Promise<string[]>;
  /**
   * When `tag` was last pushed (pointed at a manifest): the modification time of its current link,
   * which every push rewrites. MANIFEST_UNKNOWN if no such tag.
   */
  pushedAt(tag: string): Promise<Date>;
}

/** What a repository holds in storage. */
export interface RepositoryUsage {
  /** Distinct blobs linked into the repository (layers, configs) and its manifest revisions. */
  blobs: number;
  /** Their bytes; a blob shared with other repositories counts in each of them. */
  bytes: number;
}

/** One repository: its blobs, manifests, tags and referrers. */
export interface Repository {
  readonly name: string;
  readonly blobs: RepositoryBlobs;
  readonly manifests: RepositoryManifests;
  readonly tags: RepositoryTags;
  /**
   * Descriptors of the manifests whose `subject` is `digest` (with artifactType and annotations),
   * filtered by `artifactType` when given. An empty list when there are none.
   */
  referrers(digest: Digest, artifactType?: string): Promise<Descriptor[]>;
  /**
   * The distinct blobs the repository links (layers, configs, manifests) and their bytes, a
   * storage listing of its links and a (cached) stat per blob; NAME_UNKNOWN when it does not exist.
   */
  usage(): Promise<RepositoryUsage>;
}

/** Options of garbage collection. */
export interface GarbageCollectOptions {
  /** List what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Also remove manifests no tag reaches (and what only they reference). */
  deleteUntagged?: boolean;
  /**
   * Remove untagged manifests (as `deleteUntagged`) only in the repositories for which this holds:
   * retention's per-policy `deleteUntagged`. Ignored when `deleteUntagged` is true.
   */
  untaggedIn?: (repository: string) => boolean;
  /**
   * Tags to treat as absent, by repository: a retention dry run shows what its untagging would
   * let the collection remove.
   */
  ignoredTags?: ReadonlyMap<string, ReadonlySet<string>>;
  /** Called with a line of progress (what is marked, what is deleted). */
  log?: (line: string) => void;
  /**
   * Nothing modified less than this long before the mark started is collected (blob data, layer
   * and revision links, refresh records), and pushes that race with the sweep win (docs/gc.md).
   * Default 0: nothing is young and no push may run (distribution's offline collection).
   */
  delayMs?: number;
  /** Stops the collection between two steps (never in the middle of one blob's sweep). */
  signal?: AbortSignal;
  /** Called as repositories and blobs are seen. */
  progress?: (progress: GarbageCollectProgress) => void;
}

/** How far a garbage collection got. */
export interface GarbageCollectProgress {
  /** Marking repositories, then sweeping blobs. */
  phase: "mark" | "sweep";
  repositories: number;
  /** Blobs enumerated in the blob store. */
  blobs: number;
  /** Blobs found eligible so far, and their bytes. */
  candidates: number;
  bytesToFree: number;
  /** Unmarked blobs to look at in the sweep, and how many were. */
  toSweep: number;
  swept: number;
  elapsedMs: number;
  /** When the sweep started (elapsedMs then), for an ETA. */
  sweepStartedMs: number;
}

/** What a garbage collection found and (unless a dry run) removed. */
export interface GarbageCollectResult {
  markedBlobs: number;
  deletedBlobs: Digest[];
  deletedManifests: { repository: string; digest: Digest }[];
  /** Bytes of the blobs deleted (0 on a dry run). */
  freedBytes: number;
  /** Blobs and manifests the sweep removed and put back because a push relied on them meanwhile. */
  restoredBlobs: number;
  restoredManifests: number;
}

/** The garbage collector's lease: one collector at a time over one storage (docs/gc.md). */
export interface GcLease {
  readonly owner: string;
  /** Extends the lease; false when it was lost (expired and taken over). */
  renew(): Promise<boolean>;
  /** Gives the lease up (if still held). */
  release(): Promise<void>;
}

/** The registry: repositories over one storage driver. */
export interface RegistryStorage {
  /** A repository by name; NAME_INVALID for a name the spec does not allow. Cheap: no I/O. */
  repository(name: string): Repository;
  /** True when the repository exists in storage. */
  repositoryExists(name: string): Promise<boolean>;
  /**
   * Repository names, sorted, after `last` (exclusive), at most `n` of them; only those for which
   * `include` holds when given (the API passes what the caller may pull), so pages stay full.
   */
  catalog(n?: number, last?: string, include?: (name: string) => boolean): Promise<string[]>;
  /**
   * Removes repository `name` from storage: its tags, manifest and layer links and uploads (a
   * repository nested under the name stays). The blobs stay until garbage collection finds them
   * unreferenced. For a pull-through cache expiring what nobody pulled for its ttl; clients delete
   * through manifests and tags instead.
   */
  deleteRepository(name: string): Promise<void>;
  /** Removes uploads started longer ago than `olderThanMs`; returns their ids. */
  purgeUploads(olderThanMs: number, dryRun?: boolean): Promise<string[]>;
  /** Mark and sweep. Take the lease first when other collectors may run (acquireGcLease). */
  garbageCollect(options?: GarbageCollectOptions): Promise<GarbageCollectResult>;
  /**
   * Takes the collector's lease for `ttlMs` (renew it before then) in the name of `owner`;
   * undefined when another collector holds it.
   */
  acquireGcLease(owner: string, ttlMs: number): Promise<GcLease | undefined>;
  /** Checks that the storage driver answers (for the health endpoint). */
  checkHealth(): Promise<void>;
  /**
   * Lookups and hits of the in-memory caches since start, by cache: `blob` (sizes by digest),
   * `link` (layer and revision links known to exist), `manifest` (manifests by digest).
   */
  readonly cacheStats: Readonly<Record<string, Readonly<{ requests: number; hits: number }>>>;
}
