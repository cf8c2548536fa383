// What the cache of one upstream knows beyond storage: when each tag was last checked upstream
// (in memory: after a restart, a tag's first request revalidates it) and its counters, which the
// registry logs as a summary.

import { LRUCache } from "lru-cache";

/** Counters of one upstream. */
export interface ProxyCounters {
  /** Requests served from local storage. */
  hits: number;
  /** Manifests and blobs fetched from upstream. */
  misses: number;
  /** Bytes received from upstream (manifests and blobs). */
  bytesFromUpstream: number;
  /** Tags served from the cache because the upstream failed or rate-limited. */
  staleServed: number;
}

export class ProxyState {
  readonly counters: ProxyCounters = { hits: 0, misses: 0, bytesFromUpstream: 0, staleServed: 0 };
  private readonly checked: LRUCache<string, number>;

  constructor(
    private readonly ttlMs: number,
    private readonly onStale: (repository: string, error: unknown) => void = () => {},
    tagCacheSize = 100_000,
  ) {
    this.checked = new LRUCache({ max: tagCacheSize });
  }

  hit(_repository: string): void {
    this.counters.hits++;
  }

  miss(_repository: string): void {
    this.counters.misses++;
  }

  fetched(bytes: number): void {
    this.counters.bytesFromUpstream += bytes;
  }

  stale(repository: string, error: unknown): void {
    this.counters.staleServed++;
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
