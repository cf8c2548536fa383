// When tags and manifests were last pulled, for retention's `pulledWithin`. Distribution keeps no
// pull times, so Berth keeps them beside its tree, one small JSON file per repository
// (`/berth/pulls/<name>/_pulls.json`: `{"pulls": {"<tag or digest>": <Unix ms>}}`).
//
// A pull (a manifest GET) is recorded in memory only; `flush` (every minute in `berth serve`, and
// when it stops) merges what was recorded into the files, the later time winning. Two replicas
// flushing one repository at the same moment can lose one of the two updates: a pull time is then
// late by at most one flush, which a policy measured in days does not notice.

import type { StorageDriver } from "../driver/index.js";
import { unlessNotFound } from "./blobstore.js";
import { checkRepositoryName } from "./names.js";
import { paths } from "./paths.js";
import type { Digest } from "./types.js";

/** How often `berth serve` writes the pulls it recorded. */
export const PULL_FLUSH_MS = 60_000;

/** Pull times of one repository: tag or digest → Unix ms. */
export type PullTimes = Map<string, number>;

function decode(content: Uint8Array | undefined): PullTimes {
  const times: PullTimes = new Map();
  if (content === undefined) return times;
  try {
    const document = JSON.parse(Buffer.from(content).toString("utf8")) as { pulls?: unknown };
    if (typeof document.pulls !== "object" || document.pulls === null) return times;
    for (const [key, value] of Object.entries(document.pulls)) {
      if (typeof value === "number" && Number.isFinite(value)) times.set(key, value);
    }
  } catch {
    // A damaged record is an empty one: pull times are a hint, never what keeps data safe alone.
  }
  return times;
}

function merge(into: PullTimes, from: PullTimes): PullTimes {
  for (const [key, time] of from) into.set(key, Math.max(into.get(key) ?? 0, time));
  return into;
}

/** The pull times of a registry's repositories: recorded in memory, flushed to storage. */
export class PullRecord {
  private pending = new Map<string, PullTimes>();

  constructor(private readonly driver: StorageDriver) {}

  /** Records a pull of manifest `digest` of `repository` (by `tag` when pulled by tag). No I/O. */
  record(repository: string, digest: Digest, tag?: string, now = Date.now()): void {
    const times = this.pendingFor(repository);
    times.set(digest, now);
    if (tag !== undefined) times.set(tag, now);
  }

  /**
   * Writes what was recorded since the last flush into storage. A repository whose write fails
   * keeps its times for the next flush, and the others are still written; the first error is
   * thrown once all were tried.
   */
  async flush(): Promise<void> {
    const pending = this.pending;
    this.pending = new Map();
    let failure: Error | undefined;
    for (const [repository, times] of pending) {
      try {
        const stored = await this.stored(repository);
        const content = JSON.stringify({ pulls: Object.fromEntries(merge(stored, times)) });
        await this.driver.putContent(paths.pulls(repository), Buffer.from(content));
      } catch (error) {
        merge(this.pendingFor(repository), times);
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** The pull times of `repository`: what storage has and what this process has not flushed. */
  async times(repository: string): Promise<PullTimes> {
    const stored = await this.stored(repository);
    return merge(stored, this.pending.get(repository) ?? new Map<string, number>());
  }

  private pendingFor(repository: string): PullTimes {
    const times = this.pending.get(repository) ?? new Map<string, number>();
    this.pending.set(repository, times);
    return times;
  }

  private async stored(repository: string): Promise<PullTimes> {
    checkRepositoryName(repository);
    return decode(await unlessNotFound(this.driver.getContent(paths.pulls(repository))));
  }
}
