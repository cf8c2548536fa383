// The pull-through cache's Prometheus metrics, read from its counters when scraped: distribution's
// `registry_proxy_*` names (requests, hits, misses, pulled bytes, by `type` blob or manifest) with
// the upstream as labels, plus Berth's own upstream requests, errors and tags served stale.

import type { MetricsRegistry } from "../metrics/index.js";
import type { ProxyRegistry } from "./registry.js";
import type { ContentType, TypeCounters } from "./state.js";

const TYPES: ContentType[] = ["blob", "manifest"];

/** Registers the cache's metrics in `metrics`. */
export function observeProxy(metrics: MetricsRegistry, proxy: ProxyRegistry): void {
  const perType = (name: string, help: string, value: (counters: TypeCounters) => number): void => {
    metrics.counter({
      name,
      help,
      labelNames: ["upstream", "prefix", "type"],
      collect() {
        this.reset();
        for (const stats of proxy.stats()) {
          for (const type of TYPES) {
            const labels = { upstream: stats.remoteURL, prefix: stats.prefix, type };
            this.labels(labels).inc(value(stats.byType[type]));
          }
        }
      },
    });
  };
  perType(
    "registry_proxy_requests_total",
    "Requests for cached repositories' blobs and manifests (hits plus misses), by upstream and type.",
    (counters) => counters.hits + counters.misses,
  );
  perType(
    "registry_proxy_hits_total",
    "Requests served from local storage, by upstream and type.",
    (counters) => counters.hits,
  );
  perType(
    "registry_proxy_misses_total",
    "Blobs and manifests fetched from the upstream, by upstream and type.",
    (counters) => counters.misses,
  );
  perType(
    "registry_proxy_pulled_bytes_total",
    "Bytes received from the upstream, by upstream and type.",
    (counters) => counters.bytesFromUpstream,
  );
  const perUpstream = (
    name: string,
    help: string,
    value: (stats: ReturnType<ProxyRegistry["stats"]>[number]) => number,
  ): void => {
    metrics.counter({
      name,
      help,
      labelNames: ["upstream", "prefix"],
      collect() {
        this.reset();
        for (const stats of proxy.stats()) {
          this.labels({ upstream: stats.remoteURL, prefix: stats.prefix }).inc(value(stats));
        }
      },
    });
  };
  perUpstream(
    "registry_proxy_upstream_requests_total",
    "Requests sent to the upstream (token requests excluded).",
    (stats) => stats.upstreamRequests,
  );
  perUpstream(
    "registry_proxy_upstream_errors_total",
    "Upstream calls that failed: unreachable, 5xx, 401 after authenticating, 429.",
    (stats) => stats.upstreamErrors,
  );
  perUpstream(
    "registry_proxy_stale_served_total",
    "Tags served from the cache because the upstream failed or rate-limited.",
    (stats) => stats.staleServed,
  );
}
