// What the repositories of one upstream share (its client, state, fetches in flight), and the
// errors a cached repository answers with.

import {
  RegistryError,
  RegistryErrorCode,
  type BlobInfo,
  type Digest,
  type StoredManifest,
} from "../storage/index.js";
import type { BlobFetch } from "./fetch.js";
import type { ProxyState } from "./state.js";
import { UpstreamError, type Upstream } from "./upstream.js";

export function unsupported(what: string): RegistryError {
  return new RegistryError(
    RegistryErrorCode.Unsupported,
    `${what} is not supported: this repository is a pull-through cache`,
  );
}

/** A registry error for a failed upstream call: 404 as `unknown`, 429 as TOOMANYREQUESTS. */
export function upstreamFailure(error: unknown, unknown: RegistryError): unknown {
  if (!(error instanceof UpstreamError)) return error;
  if (error.notFound) return unknown;
  if (error.status === 429) {
    return new RegistryError(RegistryErrorCode.TooManyRequests, error.message, {
      retryAfterSeconds: Math.ceil((error.retryAfterMs ?? 0) / 1000),
    });
  }
  return error;
}

/** Runs `work` once per key at a time: concurrent callers share its promise. */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  run(key: string, work: () => Promise<T>): Promise<T> {
    const current = this.running.get(key);
    if (current !== undefined) return current;
    const started = work().finally(() => this.running.delete(key));
    this.running.set(key, started);
    return started;
  }
}

/** Everything the repositories of one upstream share. */
export interface UpstreamContext {
  readonly upstream: Upstream;
  readonly state: ProxyState;
  /** Blob fetches streaming, by `<repository>@<digest>`. */
  readonly fetches: Map<string, BlobFetch>;
  /** Blob fetches whose upstream request is on its way. */
  readonly pending: Map<string, Promise<BlobFetch>>;
  readonly blobStats: SingleFlight<BlobInfo>;
  readonly manifestFetches: SingleFlight<StoredManifest>;
  readonly tagChecks: SingleFlight<Digest>;
  /** Whether the local driver answers blob GETs with redirects (asked once). */
  redirects(): Promise<boolean>;
  /** Records that a client pulled a manifest of `repository` (its ttl starts again). */
  pulled(repository: string): void;
}
