// Bounded least-recently-used maps, for immutable facts (a blob's size, a link known to exist, a
// manifest's bytes by digest) and running upload hashes. Mutable state such as tags is never cached.
//
// lru-cache serves them, on the hot path too (link and size lookups on every blob HEAD and manifest
// GET): in a micro-benchmark (5000 hot 90-character keys in a 100000-entry cache, 2 M gets, then
// 1 M evicting sets) a hit took 40-60 ns against 240-370 ns for the Map-reordering cache it
// replaced, and an evicting set 0.8-1.1 us against 38-44 us (the Map's deleted entries pile up
// in front of its oldest key).
//
// lru-cache allocates its tables for `max` entries up front (a 100,000-entry cache with a TTL:
// about 3.5 MiB at once), so a cache starts at 1,024 entries and grows eightfold when full, up
// to its capacity: a registry's idle memory no longer holds tables for entries it never had
// (idle RSS 7 MiB lower with the link and protection caches, docs/performance.md).

import { LRUCache } from "lru-cache";

/** What an LRU cache holds as keys and values: anything but null and undefined. */
type Present = NonNullable<unknown>;

/** What the storage layer uses of a bounded cache. */
export interface BoundedCache<K extends Present, V extends Present> {
  get(key: K): V | undefined;
  /** `ttl`: this entry's own time to live, in milliseconds (caches made with a TTL). */
  set(key: K, value: V, options?: { ttl?: number }): unknown;
  delete(key: K): boolean;
}

/** The first size of a cache's tables; they grow eightfold when full, up to the capacity. */
const INITIAL_ENTRIES = 1024;

/**
 * How old the clock reading a TTL cache judges its entries by may be: a hundredth of the TTL,
 * between 1 ms and 1 s. lru-cache reads performance.now() once per resolution and arms a timer to
 * forget the reading; at its default of 1 ms, the link, size and protection caches of a busy
 * server armed up to three timers per millisecond (`setTimeout` and the timer list together 3-4%
 * of a blob HEAD flood's busy samples). An entry may so be believed up to a hundredth of its TTL
 * longer (plus any time the event loop was blocked): protection.ts says why that is safe there.
 */
function ttlResolution(ttlMs: number): number {
  return Math.min(1000, Math.max(1, Math.floor(ttlMs / 100)));
}

/** An LRUCache whose tables grow with what it holds, up to `capacity` entries. */
class GrowingCache<K extends Present, V extends Present> implements BoundedCache<K, V> {
  private cache: LRUCache<K, V>;

  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number | undefined,
  ) {
    this.cache = this.create(Math.min(capacity, INITIAL_ENTRIES));
  }

  get(key: K): V | undefined {
    return this.cache.get(key);
  }

  set(key: K, value: V, options?: { ttl?: number }): this {
    const { cache } = this;
    if (cache.size >= cache.max && cache.max < this.capacity && !cache.has(key)) {
      // Least recently used first, so that the order of use stays, with what is left of each
      // entry's TTL (expired ones are skipped). Not dump() and load(): dump() builds its list with
      // unshift, quadratic: growing from 65,536 entries blocked the event loop 3.6-4.5 s.
      const bigger = this.create(Math.min(this.capacity, cache.max * 8));
      for (const [key, value] of cache.rentries() as Iterable<[K, V]>) {
        if (this.ttlMs === undefined) bigger.set(key, value);
        else bigger.set(key, value, { ttl: Math.max(1, cache.getRemainingTTL(key)) });
      }
      this.cache = bigger;
    }
    this.cache.set(key, value, options);
    return this;
  }

  delete(key: K): boolean {
    return this.cache.delete(key);
  }

  private create(max: number): LRUCache<K, V> {
    return this.ttlMs === undefined
      ? new LRUCache<K, V>({ max })
      : new LRUCache<K, V>({
          max,
          ttl: Math.max(1, this.ttlMs),
          ttlAutopurge: false,
          ttlResolution: ttlResolution(this.ttlMs),
        });
  }
}

/** How often a cache was asked and how often it had the answer: plain counts, read by metrics. */
export interface CacheStats {
  requests: number;
  hits: number;
}

/** Counts one lookup in `stats` (when kept), and a hit when `found`. */
export function countLookup(stats: CacheStats | undefined, found: boolean): void {
  if (stats === undefined) return;
  stats.requests++;
  if (found) stats.hits++;
}

/**
 * A bounded LRU map of at most `capacity` entries (at least one); with `ttlMs`, an entry is also
 * forgotten that long after it was set (measured with the monotonic clock). With `stats`, each
 * `get` counts as a request, and as a hit when it finds the key (two increments: no measurable
 * cost).
 */
export function boundedCache<K extends Present, V extends Present>(
  capacity: number,
  ttlMs?: number,
  stats?: CacheStats,
): BoundedCache<K, V> {
  const cache = new GrowingCache<K, V>(Math.max(1, Math.floor(capacity)), ttlMs);
  if (stats === undefined) return cache;
  const counted = {
    get(key: K): V | undefined {
      const value = cache.get(key);
      countLookup(stats, value !== undefined);
      return value;
    },
    set(key: K, value: V, options?: { ttl?: number }) {
      return cache.set(key, value, options);
    },
    delete: (key: K) => cache.delete(key),
  };
  return counted;
}

/** Runs operations on the same key one after another (in this process), others concurrently. */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(operation, operation);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
