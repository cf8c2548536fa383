// Garbage collection as a background job of `berth serve` (config `storage.maintenance.gc`), and
// one collection under the lease (collectOnce), which `berth garbage-collect` and other jobs use.
//
// Each run takes the collector's lease in the storage (one collector at a time across replicas
// and CLI runs), renews it while the collection lasts and gives it up after; a replica that finds
// the lease held skips its turn. Like upload purging: the first run after a random part of one
// interval (at most an hour), so replicas started together do not all try at once; a run starts
// only after the previous one finished; timers do not keep the process alive; stopping aborts a
// run between two steps and waits for it.

import { hostname } from "node:os";
import type { Logger } from "pino";
import type { GcConfig } from "../config/index.js";
import type { MetricsRegistry } from "../metrics/index.js";
import type {
  GarbageCollectOptions,
  GarbageCollectResult,
  RegistryStorage,
} from "../storage/index.js";

/** How long a lease lasts without renewal; renewed every third of it. */
export const GC_LEASE_TTL_MS = 60_000;
const maxFirstDelayMs = 3_600_000;

/** Who collects, as written in the lease: host and process. */
function leaseOwner(): string {
  return `${hostname()}:${process.pid}`;
}

/** Thrown by collectOnce when another collector holds the lease. */
export class LeaseHeldError extends Error {
  readonly code = "ERR_GC_LEASE_HELD";
  constructor() {
    super("another garbage collector holds the lease (/berth/gc/lease): try again later");
  }
}

/**
 * One garbage collection under the lease: takes it (LeaseHeldError when another collector has
 * it), renews it while collecting (a lost lease aborts the collection between two steps) and
 * releases it.
 */
export async function collectOnce(
  storage: RegistryStorage,
  options: GarbageCollectOptions,
  leaseTtlMs = GC_LEASE_TTL_MS,
): Promise<GarbageCollectResult> {
  const lease = await storage.acquireGcLease(leaseOwner(), leaseTtlMs);
  if (lease === undefined) throw new LeaseHeldError();
  const lost = new AbortController();
  const signal =
    options.signal === undefined ? lost.signal : AbortSignal.any([options.signal, lost.signal]);
  const renewal = setInterval(() => {
    lease.renew().then(
      (held) => held || lost.abort(new Error("the garbage collector's lease was lost")),
      (error: unknown) => lost.abort(error),
    );
  }, leaseTtlMs / 3);
  renewal.unref();
  try {
    return await storage.garbageCollect({ ...options, signal });
  } finally {
    clearInterval(renewal);
    await lease.release();
  }
}

/** Counters of the background collector, for logs and tests. */
export interface GarbageCollectorStats {
  runs: number;
  skipped: number;
  failed: number;
  deletedBlobs: number;
  deletedManifests: number;
  freedBytes: number;
  restoredBlobs: number;
  /** The message of the last failed collection's error, if one failed. */
  lastError?: string;
}

/** A running background collector. */
export interface GarbageCollector {
  readonly stats: GarbageCollectorStats;
  /** Stops scheduling, aborts a run in progress between two steps and waits for it. */
  stop(): Promise<void>;
}

/** The collector's Prometheus series (docs/metrics.md), in `metrics`. */
function gcMetrics(metrics: MetricsRegistry) {
  return {
    runs: metrics.counter({
      name: "registry_storage_gc_runs_total",
      help: "Garbage collections by outcome: ok, error, or skipped (another collector held the lease).",
      labelNames: ["outcome"],
    }),
    blobs: metrics.counter({
      name: "registry_storage_gc_blobs_deleted_total",
      help: "Blobs garbage collection deleted (none in a dry run).",
    }),
    manifests: metrics.counter({
      name: "registry_storage_gc_manifests_deleted_total",
      help: "Untagged manifests garbage collection deleted (storage.maintenance.gc.untagged).",
    }),
    bytes: metrics.counter({
      name: "registry_storage_gc_freed_bytes_total",
      help: "Bytes of blob data garbage collection deleted.",
    }),
    restored: metrics.counter({
      name: "registry_storage_gc_restored_total",
      help: "What a collection put back because a push relied on it meanwhile, by kind (blob, manifest).",
      labelNames: ["kind"],
    }),
    duration: metrics.gauge({
      name: "registry_storage_gc_last_duration_seconds",
      help: "How long the last garbage collection that ran (ok or error) took.",
    }),
    lastSuccess: metrics.gauge({
      name: "registry_storage_gc_last_success_timestamp_seconds",
      help: "When the last garbage collection that completed ended (Unix time).",
    }),
  };
}

/** Starts collecting every `config.intervalMs`, counting in `metrics` when given. */
export function startGarbageCollector(
  storage: RegistryStorage,
  config: GcConfig,
  logger: Logger,
  metrics?: MetricsRegistry,
): GarbageCollector {
  const series = metrics === undefined ? undefined : gcMetrics(metrics);
  const stats: GarbageCollectorStats = {
    runs: 0,
    skipped: 0,
    failed: 0,
    deletedBlobs: 0,
    deletedManifests: 0,
    freedBytes: 0,
    restoredBlobs: 0,
  };
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const run = async (): Promise<void> => {
    const started = performance.now();
    try {
      const result = await collectOnce(storage, {
        delayMs: config.delayMs,
        deleteUntagged: config.untagged,
        dryRun: config.dryRun,
        signal: stopping.signal,
      });
      stats.runs++;
      if (series !== undefined) {
        series.runs.inc({ outcome: "ok" });
        if (!config.dryRun) {
          series.blobs.inc(result.deletedBlobs.length);
          series.manifests.inc(result.deletedManifests.length);
          series.bytes.inc(result.freedBytes);
        }
        series.restored.inc({ kind: "blob" }, result.restoredBlobs);
        series.restored.inc({ kind: "manifest" }, result.restoredManifests);
        series.duration.set((performance.now() - started) / 1000);
        series.lastSuccess.set(Date.now() / 1000);
      }
      stats.deletedBlobs += result.deletedBlobs.length;
      stats.deletedManifests += result.deletedManifests.length;
      stats.freedBytes += result.freedBytes;
      stats.restoredBlobs += result.restoredBlobs;
      logger.info(
        {
          markedBlobs: result.markedBlobs,
          deletedBlobs: result.deletedBlobs.length,
          deletedManifests: result.deletedManifests.length,
          freedBytes: result.freedBytes,
          restoredBlobs: result.restoredBlobs,
          restoredManifests: result.restoredManifests,
          dryRun: config.dryRun,
          durationMs: Math.round(performance.now() - started),
        },
        `garbage collection: ${result.deletedBlobs.length} blob(s) and ${result.deletedManifests.length} manifest(s) ${config.dryRun ? "eligible" : "deleted"}`,
      );
    } catch (error) {
      if (error instanceof LeaseHeldError) {
        stats.skipped++;
        series?.runs.inc({ outcome: "skipped" });
        logger.debug("garbage collection skipped: another collector holds the lease");
      } else if (!stopping.signal.aborted) {
        stats.failed++;
        stats.lastError = error instanceof Error ? (error.stack ?? error.message) : String(error);
        series?.runs.inc({ outcome: "error" });
        series?.duration.set((performance.now() - started) / 1000);
        logger.error({ err: error }, "garbage collection failed");
      }
    }
  };

  const schedule = (delayMs: number): void => {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      running = run().finally(() => {
        running = undefined;
        schedule(config.intervalMs);
      });
    }, delayMs);
    timer.unref();
  };

  schedule(Math.floor(Math.random() * Math.min(config.intervalMs, maxFirstDelayMs)));
  logger.debug(
    { interval: config.intervalMs, delay: config.delayMs, untagged: config.untagged },
    "garbage collection scheduled",
  );
  return {
    stats,
    async stop() {
      stopping.abort(new Error("the registry is stopping"));
      clearTimeout(timer);
      await running;
    },
  };
}
