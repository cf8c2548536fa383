// The pull-through cache as a RegistryStorage: a wrapper of the local registry storage that
// serves the repositories under each upstream's prefix through that upstream (a ProxyRepository)
// and every other repository as the local storage does. The API layer sees only RegistryStorage.

import type { StorageDriver } from "../driver/index.js";
import type { ProxyConfig, UpstreamConfig } from "../config/index.js";
import type {
  GarbageCollectOptions,
  GarbageCollectResult,
  GcLease,
  RegistryStorage,
  Repository,
} from "../storage/index.js";
import { checkRepositoryName, STORAGE_ROOT } from "../storage/index.js";
import { ProxyRepository, SingleFlight, type UpstreamContext } from "./repository.js";
import { CacheExpiry, type ExpiryLog } from "./expiry.js";
import { ProxyState, type ProxyCounters } from "./state.js";
import { Upstream, type UpstreamCounters } from "./upstream.js";

/** Counters of one upstream, as `ProxyRegistry.stats` reports them. */
export interface UpstreamStats extends ProxyCounters {
  prefix: string;
  remoteURL: string;
  /** Requests sent upstream (token requests excluded). */
  upstreamRequests: number;
  /** Upstream calls that failed: unreachable, 5xx, 401 after authenticating, 429. */
  upstreamErrors: number;
  /** Tokens fetched from the upstream's token service. */
  tokensFetched: number;
}

/** Options of the pull-through cache. */
export interface ProxyOptions {
  /** Called when a tag is served from the cache because its upstream failed. */
  onStale?: (repository: string, error: unknown) => void;
  /** What the expiry of cached repositories reports (see expiry.ts). */
  expiryLog?: ExpiryLog;
}

/** How often cached repositories are checked for expiry: a quarter of the shortest ttl, 250 ms to 1 min. */
function expiryInterval(ttls: number[]): number {
  return Math.min(60_000, Math.max(250, Math.min(...ttls) / 4));
}

export class ProxyRegistry implements RegistryStorage {
  private readonly upstreams: UpstreamContext[];
  private redirecting: Promise<boolean> | undefined;
  /** Expires the repositories nobody pulled for their ttl (none with ttl 0, as distribution). */
  readonly expiry: CacheExpiry;

  constructor(
    private readonly local: RegistryStorage,
    private readonly driver: StorageDriver,
    config: ProxyConfig,
    options: ProxyOptions = {},
  ) {
    // Longest prefix first, so that "a/b/" wins over "a/" (the config refuses overlaps anyway).
    const sorted = [...config.upstreams].sort((a, b) => b.prefix.length - a.prefix.length);
    this.upstreams = sorted.map((upstream) => this.context(upstream, options));
    this.expiry = new CacheExpiry(
      local,
      driver,
      (name) => {
        const ttl = this.upstreamOf(name)?.upstream.config.ttlMs;
        return ttl === undefined ? undefined : ttl > 0 ? ttl : Infinity;
      },
      options.expiryLog ?? { expired: () => {}, failed: () => {} },
    );
  }

  /** Starts expiring cached repositories (when some upstream has a ttl). */
  async start(): Promise<void> {
    const ttls = this.upstreams.map(({ upstream }) => upstream.config.ttlMs).filter((t) => t > 0);
    if (ttls.length > 0) await this.expiry.start(expiryInterval(ttls));
  }

  /** Stops expiring, keeping the pull times in storage. */
  async stop(): Promise<void> {
    await this.expiry.stop();
  }

  private context(config: UpstreamConfig, options: ProxyOptions): UpstreamContext {
    return {
      upstream: new Upstream(config),
      state: new ProxyState(config.ttlMs, options.onStale),
      fetches: new Map(),
      pending: new Map(),
      blobStats: new SingleFlight(),
      manifestFetches: new SingleFlight(),
      tagChecks: new SingleFlight(),
      redirects: () => (this.redirecting ??= this.askRedirects()),
      pulled: (repository) => this.expiry.pulled(repository),
    };
  }

  /** Whether the driver gives URLs at all (the contract makes it a property of the backend). */
  private async askRedirects(): Promise<boolean> {
    try {
      return (await this.driver.redirectURL(STORAGE_ROOT, { method: "GET" })) !== null;
    } catch {
      return false;
    }
  }

  /** The upstream serving repository `name`, if any. */
  private upstreamOf(name: string): UpstreamContext | undefined {
    return this.upstreams.find(
      (context) =>
        name.startsWith(context.upstream.config.prefix) &&
        name.length > context.upstream.config.prefix.length,
    );
  }

  repository(name: string): Repository {
    checkRepositoryName(name);
    const local = this.local.repository(name);
    const upstream = this.upstreamOf(name);
    return upstream === undefined ? local : new ProxyRepository(upstream, local);
  }

  repositoryExists(name: string): Promise<boolean> {
    return this.local.repositoryExists(name);
  }

  catalog(n?: number, last?: string, include?: (name: string) => boolean): Promise<string[]> {
    return this.local.catalog(n, last, include);
  }

  deleteRepository(name: string): Promise<void> {
    return this.local.deleteRepository(name);
  }

  purgeUploads(olderThanMs: number, dryRun?: boolean): Promise<string[]> {
    return this.local.purgeUploads(olderThanMs, dryRun);
  }

  garbageCollect(options?: GarbageCollectOptions): Promise<GarbageCollectResult> {
    return this.local.garbageCollect(options);
  }

  acquireGcLease(owner: string, ttlMs: number): Promise<GcLease | undefined> {
    return this.local.acquireGcLease(owner, ttlMs);
  }

  checkHealth(): Promise<void> {
    return this.local.checkHealth();
  }

  get cacheStats(): RegistryStorage["cacheStats"] {
    return this.local.cacheStats;
  }

  /** Each upstream's counters. */
  stats(): UpstreamStats[] {
    return this.upstreams.map(({ upstream, state }) => {
      const counters: UpstreamCounters = upstream.counters;
      return {
        prefix: upstream.config.prefix,
        remoteURL: upstream.config.remoteURL,
        ...state.counters,
        upstreamRequests: counters.requests,
        upstreamErrors: counters.errors,
        tokensFetched: counters.tokens,
      };
    });
  }

  /**
   * Rewrites a request URL carrying the `ns` query parameter that containerd and podman mirrors
   * send (`/v2/library/alpine/manifests/latest?ns=docker.io`) to the repository under that
   * upstream's prefix (`/v2/docker.io/library/alpine/...`). Other URLs come back unchanged.
   */
  rewriteNamespace(url: string): string {
    const queryStart = url.indexOf("?");
    if (queryStart === -1) return url;
    const ns = new URLSearchParams(url.slice(queryStart + 1)).get("ns");
    if (ns === null || ns === "") return url;
    const upstream = this.upstreams.find((context) => context.upstream.config.prefix === `${ns}/`);
    if (upstream === undefined) return url;
    const path = url.slice(0, queryStart);
    // Only repository endpoints: /v2/<name>/(manifests|blobs|tags|referrers)/...
    if (!/^\/v2\/.+\/(?:manifests|blobs|tags|referrers)\//.test(path)) return url;
    const prefix = upstream.upstream.config.prefix;
    const rest = path.slice("/v2/".length);
    if (rest.startsWith(prefix)) return url;
    return `/v2/${prefix}${rest}${url.slice(queryStart)}`;
  }
}

/** The local storage, wrapped by a pull-through cache when the config names upstreams. */
export function withProxy(
  local: RegistryStorage,
  driver: StorageDriver,
  config: ProxyConfig,
  options?: ProxyOptions,
): RegistryStorage | ProxyRegistry {
  if (config.upstreams.length === 0) return local;
  return new ProxyRegistry(local, driver, config, options);
}
