// What the storage layer remembers of content only a delete can change: the layer and manifest
// revision links known to exist (by path) and blob sizes (by digest). distribution calls this the
// blob descriptor cache (`storage.cache.blobdescriptor`), `inmemory` or `redis`.
//
// In process (the default), each replica remembers for itself, so a link or blob another replica
// deletes (a client's DELETE, its garbage collection) is still believed here until the entry is
// evicted or `ttlMs` after it was learnt (IN_PROCESS_TTL_MS, one minute), whichever comes first:
// that is the bound on the staleness. With Redis (server/redis-cache.ts) every replica reads and
// forgets the same entries, so a delete on one is seen by the others at once.
//
// Nothing here is relied on for safety: a manifest PUT, a mount and a blob HEAD check the data in
// storage itself before acknowledging (protection.ts). A stale entry can only make a pull believe
// in a blob that is gone, until it tries to read it.

import { boundedCache, type BoundedCache } from "./cache.js";
import type { Digest } from "./types.js";

/** The longest an in-process entry is believed without looking at storage again: one minute. */
export const IN_PROCESS_TTL_MS = 60_000;

/** A blob descriptor cache (see above). Implementations never reject: a failing cache misses. */
export interface BlobDescriptorCache {
  /** The digest the layer or revision link at `path` holds, when known to exist. */
  link(path: string): Promise<Digest | undefined>;
  setLink(path: string, digest: Digest): Promise<void>;
  /** Resolves once every replica sharing the cache no longer believes the link exists. */
  forgetLink(path: string): Promise<void>;
  /** The size of a blob known to be stored. */
  size(digest: Digest): Promise<number | undefined>;
  setSize(digest: Digest, size: number): Promise<void>;
  forgetSize(digest: Digest): Promise<void>;
  /** Releases connections; the cache misses from then on. */
  close?(): Promise<void>;
  /**
   * `link` answered from this process's memory, without a promise (the hot path of a blob HEAD
   * or a manifest GET); undefined when that needs more (then ask `link`). Only a cache that keeps
   * its entries in process has it.
   */
  knownLink?(path: string): Digest | undefined;
  /** `size` answered from this process's memory, as `knownLink`. */
  knownSize?(digest: Digest): number | undefined;
}

/** `storage.cache.blobdescriptor: inmemory`: two bounded LRU maps whose entries expire. */
export class InProcessDescriptorCache implements BlobDescriptorCache {
  private readonly links: BoundedCache<string, Digest>;
  private readonly sizes: BoundedCache<Digest, number>;

  constructor(linkCapacity: number, sizeCapacity: number, ttlMs = IN_PROCESS_TTL_MS) {
    this.links = boundedCache(linkCapacity, ttlMs);
    this.sizes = boundedCache(sizeCapacity, ttlMs);
  }

  async link(path: string): Promise<Digest | undefined> {
    return this.links.get(path);
  }

  knownLink(path: string): Digest | undefined {
    return this.links.get(path);
  }

  knownSize(digest: Digest): number | undefined {
    return this.sizes.get(digest);
  }

  async setLink(path: string, digest: Digest): Promise<void> {
    this.links.set(path, digest);
  }

  async forgetLink(path: string): Promise<void> {
    this.links.delete(path);
  }

  async size(digest: Digest): Promise<number | undefined> {
    return this.sizes.get(digest);
  }

  async setSize(digest: Digest, size: number): Promise<void> {
    this.sizes.set(digest, size);
  }

  async forgetSize(digest: Digest): Promise<void> {
    this.sizes.delete(digest);
  }
}
