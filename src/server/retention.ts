// Retention as one run (`berth retention`) and as a background job of `berth serve` (config
// `storage.retention`, docs/retention.md). A run untags what the policies do not keep
// (src/storage/retention.ts); then, when a policy says deleteUntagged, one garbage collection under
// the lease removes the untagged manifests of those repositories (an index's children and the
// referrers of kept manifests stay; a referrer whose subject goes, goes) and the blobs nothing
// references any more. A dry run reports the tags and what the collection would remove.

import type { Logger } from "pino";
import type { BerthConfig } from "../config/index.js";
import type {
  GarbageCollectProgress,
  GarbageCollectResult,
  PullRecord,
  Registry,
  RetentionResult,
} from "../storage/index.js";
import { collectOnce, LeaseHeldError } from "./garbage-collector.js";

/** Options of one retention run. */
export interface RetentionRunOptions {
  dryRun?: boolean;
  pulls?: PullRecord;
  log?: (line: string) => void;
  /** Repositories looked at so far, then the collection's progress. */
  progress?: (repositories: number) => void;
  gcProgress?: (progress: GarbageCollectProgress) => void;
  signal?: AbortSignal;
}

/** What one run did: the tags, and the collection when one ran. */
export interface RetentionRun {
  retention: RetentionResult;
  collection?: GarbageCollectResult;
  /** Why no collection ran though one was needed (another collector held the lease). */
  collectionSkipped?: string;
}

/** One retention run over `storage` with the policies of `config` (see the top of this file). */
export async function retainOnce(
  storage: Registry,
  config: BerthConfig,
  options: RetentionRunOptions = {},
): Promise<RetentionRun> {
  const log = options.log ?? (() => undefined);
  const dryRun = options.dryRun ?? config.storage.retention.dryRun;
  const retention = await storage.applyRetention(config.storage.retention.policies, {
    dryRun,
    pulls: options.pulls,
    log,
    progress: options.progress,
    signal: options.signal,
  });
  log(
    `retention: ${retention.repositories.length} repositories, ${retention.kept.length} tags kept, ` +
      `${retention.removed.length} ${dryRun ? "would be untagged" : "untagged"}`,
  );
  if (retention.deleteUntaggedIn.size === 0) return { retention };
  const ignoredTags = new Map<string, Set<string>>();
  if (dryRun) {
    for (const { repository, tag } of retention.removed) {
      const tags = ignoredTags.get(repository) ?? new Set<string>();
      tags.add(tag);
      ignoredTags.set(repository, tags);
    }
  }
  try {
    const collection = await collectOnce(storage, {
      dryRun,
      deleteUntagged: false,
      untaggedIn: (name) => retention.deleteUntaggedIn.has(name),
      ignoredTags,
      delayMs: config.storage.gc.delayMs,
      log,
      progress: options.gcProgress,
      signal: options.signal,
    });
    return { retention, collection };
  } catch (error) {
    if (!(error instanceof LeaseHeldError)) throw error;
    log(`retention: untagged manifests not collected now: ${error.message}`);
    return { retention, collectionSkipped: error.message };
  }
}

/** A running retention job. */
export interface RetentionJob {
  /** Stops scheduling, aborts a run in progress between two steps and waits for it. */
  stop(): Promise<void>;
}

/** Runs retention every `storage.retention.interval` (the first run after one interval). */
export function startRetention(
  storage: Registry,
  config: BerthConfig,
  logger: Logger,
  pulls: PullRecord,
): RetentionJob {
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const run = async (): Promise<void> => {
    try {
      // What this process recorded counts: written first, so every replica reads it.
      await pulls.flush();
      const result = await retainOnce(storage, config, {
        pulls,
        signal: stopping.signal,
        log: (line) => logger.info(line),
      });
      logger.info(
        {
          repositories: result.retention.repositories.length,
          kept: result.retention.kept.length,
          untagged: result.retention.removed.length,
          deletedManifests: result.collection?.deletedManifests.length ?? 0,
          deletedBlobs: result.collection?.deletedBlobs.length ?? 0,
          dryRun: config.storage.retention.dryRun,
        },
        "retention done",
      );
    } catch (error) {
      if (!stopping.signal.aborted) logger.error({ err: error }, "retention failed");
    }
  };
  const schedule = (): void => {
    if (stopping.signal.aborted) return;
    timer = setTimeout(() => {
      running = run().finally(() => {
        running = undefined;
        schedule();
      });
    }, config.storage.retention.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopping.abort(new Error("the registry is stopping"));
      clearTimeout(timer);
      await running;
    },
  };
}
