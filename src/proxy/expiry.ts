// Repositories that were only cached expire: each cached repository remembers when it was last
// pulled (a manifest served, by tag or digest), and once its upstream's ttl has passed since then
// it is deleted from storage (its tags and links; garbage collection then reclaims the blobs no
// other repository uses), as distribution's proxy expires what it cached. A later pull fetches it
// again. The pull times are kept in storage (one small JSON file, written when they changed), so
// a restart does not give every repository a fresh ttl; repositories found in storage that the
// file does not name (cached before it existed) start their ttl at start.

import type { StorageDriver } from "../driver/index.js";
import { PathNotFoundError } from "../driver/index.js";
import { proxyPullsPath, type RegistryStorage } from "../storage/index.js";

/** The file's shape: repository name → last pull, in milliseconds since the epoch. */
interface PullsFile {
  version: 1;
  pulls: Record<string, number>;
}

/** How expiry reports what it did or what failed (the registry logs it). */
export interface ExpiryLog {
  expired(repository: string): void;
  failed(what: string, error: unknown): void;
}

export class CacheExpiry {
  private readonly pulls = new Map<string, number>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly storage: RegistryStorage,
    private readonly driver: StorageDriver,
    /** The ttl of a cached repository, undefined for a repository no upstream serves. */
    private readonly ttlOf: (repository: string) => number | undefined,
    private readonly log: ExpiryLog,
  ) {}

  /** Records a pull of `repository` now. */
  pulled(repository: string): void {
    this.pulls.set(repository, Date.now());
    this.dirty = true;
  }

  /** The last pull of `repository` known here (for tests and logs). */
  lastPull(repository: string): number | undefined {
    return this.pulls.get(repository);
  }

  /**
   * Loads the pull times, gives the cached repositories the file does not name a fresh ttl, and
   * checks every `intervalMs` from then on (expiring, then saving what changed).
   */
  async start(intervalMs: number): Promise<void> {
    const saved = await this.read();
    for (const [repository, at] of Object.entries(saved)) {
      if (!this.pulls.has(repository) || this.pulls.get(repository)! < at) {
        this.pulls.set(repository, at);
      }
    }
    const now = Date.now();
    for (const repository of await this.storage.catalog()) {
      if (this.ttlOf(repository) !== undefined && !this.pulls.has(repository)) {
        this.pulls.set(repository, now);
        this.dirty = true;
      }
    }
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  /** Stops checking and saves the pull times. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.save().catch((error: unknown) => this.log.failed("saving pull times", error));
  }

  /** One round: expires what is due, then saves the pull times if they changed. */
  check(): Promise<void> {
    this.running = this.running.then(async () => {
      const now = Date.now();
      for (const [repository, at] of [...this.pulls]) {
        const ttl = this.ttlOf(repository);
        if (ttl !== undefined && now - at < ttl) continue;
        // Pulled again while an earlier one was being expired: keep it.
        if (this.pulls.get(repository) !== at) continue;
        try {
          if (ttl !== undefined) await this.storage.deleteRepository(repository);
          if (this.pulls.get(repository) === at) this.pulls.delete(repository);
          this.dirty = true;
          if (ttl !== undefined) this.log.expired(repository);
        } catch (error) {
          this.log.failed(`expiring ${repository}`, error);
        }
      }
      await this.save().catch((error: unknown) => this.log.failed("saving pull times", error));
    });
    return this.running;
  }

  private async read(): Promise<Record<string, number>> {
    let content: Uint8Array;
    try {
      content = await this.driver.getContent(proxyPullsPath());
    } catch (error) {
      if (error instanceof PathNotFoundError) return {};
      throw error;
    }
    try {
      const parsed = JSON.parse(Buffer.from(content).toString("utf8")) as Partial<PullsFile>;
      const pulls: Record<string, number> = {};
      for (const [repository, at] of Object.entries(parsed.pulls ?? {})) {
        if (typeof at === "number" && Number.isFinite(at)) pulls[repository] = at;
      }
      return pulls;
    } catch (error) {
      // A damaged file costs fresh ttls, nothing more.
      this.log.failed(`reading ${proxyPullsPath()}`, error);
      return {};
    }
  }

  /**
   * Writes the pull times when they changed, merged with the file's (another replica on the same
   * storage may have recorded later pulls: the later time wins; what either expired is gone).
   */
  private async save(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const merged: Record<string, number> = {};
    const saved = await this.read();
    for (const [repository, at] of this.pulls) {
      merged[repository] = Math.max(at, saved[repository] ?? 0);
    }
    const file: PullsFile = { version: 1, pulls: merged };
    try {
      await this.driver.putContent(proxyPullsPath(), Buffer.from(JSON.stringify(file)));
    } catch (error) {
      this.dirty = true;
      throw error;
    }
  }
}
