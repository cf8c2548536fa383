// What a push tells a concurrent garbage collector: "I rely on this digest now". See docs/gc.md for
// the whole argument; in short, before a registry acknowledges anything that relies on a blob or a
// manifest being stored (a finished upload, a mount, a blob HEAD, a manifest PUT), it
//
//   1. rewrites the digest's refresh record, `/berth/gc/refreshed/<algorithm>/<hex>`, whose modTime
//      (the backend's clock) the collector reads, then
//   2. checks, without any cache, that the digest's data is stored.
//
// The collector moves data aside only when the record is older than its mark start minus `delay`,
// and looks at the record again after moving: a record rewritten meanwhile makes it put the data
// back. So a check in step 2 that found the data either ran before the collector moved it (then
// the collector sees the record and restores), or after it was restored.
//
// Cheap: one touch (an unsynced write, docs/gc.md "Crashes") per digest per `delay / 2` per
// process. The answer stays valid for that long (the lru-cache's TTL, on the monotonic clock): a
// collector cannot take data whose record is younger than `delay`. The cache judges its entries
// by a clock reading up to delay/200 old (cache.ts, `ttlResolution`; as much again each time the
// cache grows and copies its entries with their remaining TTL, three times at most), plus however
// long the event loop was blocked: an answer is so believed at most delay/2 + delay/50 + that
// block after the record was written, still well inside `delay`.

import { boundedCache, type BoundedCache } from "./cache.js";
import type { StorageDriver } from "../driver/index.js";
import type { ParsedDigest } from "./digest.js";
import type { Digest } from "./types.js";
import { paths } from "./paths.js";

/** The default protection window (config `storage.maintenance.gc.delay`): one hour. */
export const DEFAULT_GC_DELAY_MS = 3_600_000;

export class Protection {
  /** Digests whose record this process wrote, and found stored after, less than delay/2 ago. */
  private readonly recent: BoundedCache<string, true>;

  constructor(
    private readonly driver: StorageDriver,
    readonly delayMs: number,
    capacity: number,
  ) {
    this.recent = boundedCache(capacity, delayMs / 2);
  }

  /**
   * Refreshes `digest`'s protection and tells whether it is stored (`stored`, called after the
   * refresh, must not use a cache). True without I/O when this process did both within delay/2.
   */
  async protect(digest: ParsedDigest, stored: () => Promise<boolean>): Promise<boolean> {
    if (this.recent.get(digest.digest) !== undefined) return true;
    const refreshed = performance.now();
    await this.refresh(digest);
    if (!(await stored())) return false;
    this.stored(digest, refreshed);
    return true;
  }

  /**
   * True when `protect(digest)` would answer true without I/O: this process rewrote the record and
   * found the data stored less than delay/2 ago. Without a promise, for the hot path of a blob
   * HEAD answered from memory.
   */
  isRecent(digest: Digest): boolean {
    return this.recent.get(digest) !== undefined;
  }

  /**
   * Rewrites the refresh record, for data this process is about to store. With the driver's
   * touch, not synced: what a crash may undo, the links written after it cover (docs/gc.md,
   * "Crashes").
   */
  async refresh(digest: ParsedDigest): Promise<void> {
    const path = paths.gcRefreshed(digest);
    if (this.driver.touch !== undefined) await this.driver.touch(path);
    else await this.driver.putContent(path, Buffer.from(digest.digest, "utf8"));
  }

  /**
   * Records that `digest`'s record was rewritten at `refreshed` (performance.now() taken before
   * the write) and the data found or put in storage after.
   */
  stored(digest: ParsedDigest, refreshed: number): void {
    const ttl = this.delayMs / 2 - (performance.now() - refreshed);
    if (ttl >= 1) this.recent.set(digest.digest, true, { ttl });
  }

  /** Forgets what is known of `digest` (the collector removed it). */
  forget(digest: ParsedDigest): void {
    this.recent.delete(digest.digest);
  }
}
