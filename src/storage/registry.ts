// The registry storage layer over one storage driver: repositories with their blobs, uploads,
// manifests, tags and referrers; the catalog; upload purging; garbage collection.

import type { StorageDriver } from "../driver/index.js";
import { BlobStore, digestsBelow, LinkStore, unlessNotFound } from "./blobstore.js";
import { boundedCache, KeyedQueue, type CacheStats } from "./cache.js";
import { UNSTARTED_FOR_MS } from "./upload.js";
import { catalog } from "./catalog.js";
import { mutationChecks, type StorageContext } from "./context.js";
import { InProcessDescriptorCache, type BlobDescriptorCache } from "./descriptor-cache.js";
import { eachLimited, garbageCollect } from "./gc.js";
import { acquireLease } from "./lease.js";
import { LinkedBlobs } from "./linkedblobs.js";
import { ManifestStore } from "./manifeststore.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { checkRepositoryName } from "./names.js";
import { baseName, isRepositoryListing, paths, STORAGE_ROOT } from "./paths.js";
import { DEFAULT_GC_DELAY_MS, Protection } from "./protection.js";
import { purgeUploads } from "./purge.js";
import { TagStore } from "./tagstore.js";
import {
  applyRetention,
  type RetentionOptions,
  type RetentionPolicy,
  type RetentionResult,
} from "./retention.js";
import { Quotas } from "./quota.js";
import type {
  Descriptor,
  Digest,
  GarbageCollectOptions,
  GarbageCollectResult,
  GcLease,
  RegistryStorage,
  RegistryStorageOptions,
  QuotaUsage,
  Repository,
  RepositoryUsage,
} from "./types.js";

/** How many ended uploads a process remembers (context.endedUploads): ~200 KB. */
const ENDED_UPLOADS = 1_000;

/** Blob stats in flight at once while summing a repository's usage. */
const USAGE_PARALLEL = 16;

/** Repository views kept for the names used recently (Registry.view). */
const VIEWS = 1024;

/** Options of `createRegistryStorage` beyond the shared RegistryStorageOptions. */
export interface RegistryStorageTuning {
  /** Blob sizes kept in memory (immutable facts); default 10000. */
  blobCacheSize?: number;
  /** Small manifests kept in memory by digest; default 1000. */
  manifestCacheSize?: number;
  /** Repository layer and manifest revision links known to exist, kept in memory; default 100000. */
  linkCacheSize?: number;
  /** Running hashes of uploads in progress kept in memory; default 10000. */
  uploadHashStates?: number;
  /**
   * Where link and size facts are remembered (`storage.cache.blobdescriptor`): by default in
   * process, `blobCacheSize` sizes and `linkCacheSize` links, each believed for at most
   * `descriptorTtlMs` (default IN_PROCESS_TTL_MS). Shared by replicas when it is Redis.
   */
  descriptorCache?: BlobDescriptorCache;
  descriptorTtlMs?: number;
}

class RepositoryView implements Repository {
  readonly blobs: LinkedBlobs;
  readonly manifests: ManifestStore;
  readonly tags: TagStore;

  constructor(
    private readonly context: StorageContext,
    readonly name: string,
    private readonly exists: () => Promise<boolean>,
  ) {
    this.blobs = new LinkedBlobs(context, name);
    this.tags = new TagStore(context, name, exists, (digest) => this.manifests.has(digest));
    this.manifests = new ManifestStore(context, name, this.tags);
  }

  referrers(digest: Digest, artifactType?: string): Promise<Descriptor[]> {
    return this.manifests.referrers(digest, artifactType);
  }

  async usage(): Promise<RepositoryUsage> {
    const { driver, blobs } = this.context;
    const [layers, revisions] = await Promise.all([
      digestsBelow(driver, paths.layers(this.name)),
      digestsBelow(driver, paths.revisions(this.name)),
    ]);
    if (layers.length === 0 && revisions.length === 0 && !(await this.exists())) {
      throw new RegistryError(
        RegistryErrorCode.NameUnknown,
        `repository ${this.name} is not known to the registry`,
        { name: this.name },
      );
    }
    const distinct = new Map([...layers, ...revisions].map((digest) => [digest.digest, digest]));
    const usage: RepositoryUsage = { blobs: 0, bytes: 0 };
    await eachLimited([...distinct.values()], USAGE_PARALLEL, async (digest) => {
      const info = await blobs.stat(digest);
      if (info === undefined) return;
      usage.blobs += 1;
      usage.bytes += info.size;
    });
    return usage;
  }
}

/** The registry storage layer (see RegistryStorage). */
export class Registry implements RegistryStorage {
  private readonly context: StorageContext;
  private readonly views = boundedCache<string, RepositoryView>(VIEWS);
  readonly cacheStats = {
    blob: { requests: 0, hits: 0 },
    link: { requests: 0, hits: 0 },
    manifest: { requests: 0, hits: 0 },
  } satisfies Record<string, CacheStats>;

  constructor(
    readonly driver: StorageDriver,
    options: RegistryStorageOptions & RegistryStorageTuning = {},
  ) {
    const resolved = {
      deleteEnabled: options.deleteEnabled ?? false,
      readOnly: options.readOnly ?? false,
      gcDelayMs: options.gcDelayMs ?? DEFAULT_GC_DELAY_MS,
      immutableTags: options.immutableTags ?? [],
      quotas: options.quotas ?? [],
      unstartedUploadMs: options.unstartedUploadMs ?? UNSTARTED_FOR_MS,
    };
    const descriptors =
      options.descriptorCache ??
      new InProcessDescriptorCache(
        options.linkCacheSize ?? 100_000,
        options.blobCacheSize ?? 10_000,
        options.descriptorTtlMs,
      );
    this.context = {
      driver,
      blobs: new BlobStore(driver, descriptors, this.cacheStats.blob),
      links: new LinkStore(driver, descriptors, this.cacheStats.link),
      options: resolved,
      hashStates: boundedCache(options.uploadHashStates ?? 10_000),
      endedUploads: boundedCache(ENDED_UPLOADS),
      queue: new KeyedQueue(),
      manifestCache: boundedCache(
        options.manifestCacheSize ?? 1_000,
        undefined,
        this.cacheStats.manifest,
      ),
      protection: new Protection(driver, resolved.gcDelayMs, options.linkCacheSize ?? 100_000),
      immutableTags: resolved.immutableTags.map((source) => ({
        source,
        pattern: new RegExp(source),
      })),
      quotas: new Quotas(resolved.quotas),
      ...mutationChecks(resolved),
    };
  }

  repository(name: string): Repository {
    return this.view(name);
  }

  /**
   * The view of repository `name`, kept for the names used recently: a view holds no state of its
   * own, and a blob HEAD or manifest GET so skips the name check and six allocations.
   */
  private view(name: string): RepositoryView {
    let view = this.views.get(name);
    if (view === undefined) {
      checkRepositoryName(name);
      view = new RepositoryView(this.context, name, () => this.repositoryExists(name));
      this.views.set(name, view);
    }
    return view;
  }

  /** Every quota's usage, counted afresh from storage (`berth usage`). */
  quotaUsage(): Promise<QuotaUsage[]> {
    return this.context.quotas.usage(this.context);
  }

  /** The quotas' current counts (for metrics): storage is read only for a namespace not counted. */
  currentQuotaUsage(): Promise<QuotaUsage[]> {
    return this.context.quotas.current(this.context);
  }

  /** Untags what `policies` do not keep (retention.ts); the caller collects after. */
  applyRetention(
    policies: readonly RetentionPolicy[],
    options: RetentionOptions = {},
  ): Promise<RetentionResult> {
    if (!options.dryRun) this.context.checkWritable();
    return applyRetention(this.context, (name) => this.view(name).tags, policies, options);
  }

  async repositoryExists(name: string): Promise<boolean> {
    checkRepositoryName(name);
    const entries = await unlessNotFound(this.driver.list(paths.repository(name)));
    return entries !== undefined && isRepositoryListing(entries.map(baseName));
  }

  catalog(n?: number, last?: string, include?: (name: string) => boolean): Promise<string[]> {
    return catalog(this.driver, n, last, include);
  }

  async deleteRepository(name: string): Promise<void> {
    checkRepositoryName(name);
    this.context.checkWritable();
    // Its own directories only: a repository nested under this name is another repository.
    for (const directory of [paths.manifests(name), paths.layers(name), paths.uploads(name)]) {
      // Forgotten before, and again after (a read that raced with the delete is not remembered).
      await this.context.links.forgetUnder(directory);
      await unlessNotFound(this.driver.delete(directory));
      await this.context.links.forget(directory);
    }
  }

  async purgeUploads(olderThanMs: number, dryRun = false): Promise<string[]> {
    return purgeUploads(this.context, olderThanMs, dryRun);
  }

  async garbageCollect(options: GarbageCollectOptions = {}): Promise<GarbageCollectResult> {
    if (!options.dryRun) this.context.checkWritable();
    try {
      return await garbageCollect(this.context, options);
    } finally {
      // What was collected is no longer counted against quotas: count again when next needed.
      if (!options.dryRun) this.context.quotas.drop();
    }
  }

  acquireGcLease(owner: string, ttlMs: number): Promise<GcLease | undefined> {
    return acquireLease(this.driver, owner, ttlMs);
  }

  async checkHealth(): Promise<void> {
    // An empty registry has no root yet: that is healthy, only a failing backend is not.
    await unlessNotFound(this.driver.stat(STORAGE_ROOT));
  }
}

/** The registry storage layer over `driver`. */
export function createRegistryStorage(
  driver: StorageDriver,
  options: RegistryStorageOptions & RegistryStorageTuning = {},
): Registry {
  return new Registry(driver, options);
}
