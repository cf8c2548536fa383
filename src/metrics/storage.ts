// Storage layer metrics: the in-memory caches' lookups and hits, read from the storage layer's
// plain counts when scraped (nothing on the request path), under distribution's names with a
// `cache` label (blob, link, manifest); summed over it they are distribution's unlabelled series.

import type { RegistryStorage } from "../storage/index.js";
import type { MetricsRegistry } from "./registry.js";

/** Adds the cache metrics of `storage` to `registry`. */
export function observeStorage(registry: MetricsRegistry, storage: RegistryStorage): void {
  registry.counter({
    name: "registry_storage_cache_requests_total",
    help: "The number of cache requests received, by cache (blob, link, manifest).",
    labelNames: ["cache"],
    collect() {
      this.reset();
      for (const [cache, stats] of Object.entries(storage.cacheStats)) {
        this.labels(cache).inc(stats.requests);
      }
    },
  });
  registry.counter({
    name: "registry_storage_cache_hits_total",
    help: "The number of cache requests that found the answer in the cache, by cache.",
    labelNames: ["cache"],
    collect() {
      this.reset();
      for (const [cache, stats] of Object.entries(storage.cacheStats)) {
        this.labels(cache).inc(stats.hits);
      }
    },
  });
}
