// What the cache of one upstream knows beyond storage: when each tag was last checked upstream
// (in memory: after a restart, a tag's first request revalidates it) and its counters, which the
// registry logs as a summary.

import { LRUCache } from "lru-cache";

/** What a counter counts: distribution's `type` label. */
export type ContentType = "blob" | "manifest";

/** Counters of one upstream for one content type. */
export interface TypeCounters {
  /** Requests served from local storage. */
  hits: number;
  /** Manifests or blobs fetched from upstream. */
  misses: number;
  /** Bytes received from upstream. */
  bytesFromUpstream: number;
}

/** Counters of one upstream: totals, by type, and tags served stale. */
export interface ProxyCounters extends TypeCounters {
  byType: Record<ContentType, TypeCounters>;
  /** Tags served from the cache because the upstream failed or rate-limited. */
  staleServed: number;
}

function zero(): TypeCounters {
  return { hits: 0, misses: 0, bytesFromUpstream: 0 };
}

export class ProxyState {
  private readonly byType: Record<ContentType, TypeCounters> = {
    blob: zero(),
    manifest: zero(),
  };
  private staleServed = 0;
  private readonly checked: LRUCache<string, number>;

  constructor(
    private readonly ttlMs: number,
    private readonly onStale: (repository: string, error: unknown) => void = () => {},
    tagCacheSize = 100_000,
  ) {
    this.checked = new LRUCache({ max: tagCacheSize });
  }

  /** A snapshot of the counters. */
  get counters(): ProxyCounters {
    const { blob, manifest } = this.byType;
    return {
      hits: blob.hits + manifest.hits,
      misses: blob.misses + manifest.misses,
      bytesFromUpstream: blob.bytesFromUpstream + manifest.bytesFromUpstream,
      byType: { blob: { ...blob }, manifest: { ...manifest } },
      staleServed: this.staleServed,
    };
  }

  hit(type: ContentType): void {
    this.byType[type].hits++;
  }

  miss(type: ContentType): void {
    this.byType[type].misses++;
  }

  fetched(type: ContentType, bytes: number): void {
    this.byType[type].bytesFromUpstream += bytes;
  }

  stale(repository: string, error: unknown): void {
    this.staleServed++;
    this.onStale(repository, error);
  }

  /** True while `tag` was checked upstream less than ttl ago. */
  tagFresh(repository: string, tag: string): boolean {
    const at = this.checked.get(`${repository}:${tag}`);
    return at !== undefined && Date.now() - at < this.ttlMs;
  }

  tagChecked(repository: string, tag: string): void {
    this.checked.set(`${repository}:${tag}`, Date.now());
  }
}
