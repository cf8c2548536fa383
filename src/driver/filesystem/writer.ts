// The filesystem driver's FileWriter: a hidden file next to the path, written in batches beyond
// its first MiB, renamed into place on commit (see driver.ts for the names of the files).

import { dirname } from "node:path";
import type { FileWriter, StoragePath } from "../driver.js";
import { WriterState } from "../writer-state.js";
import type { FilesystemDriver } from "./driver.js";
import {
  NAME,
  closedWriterName,
  errorCode,
  fdClose,
  fdDataSync,
  fdSync,
  fdTruncate,
  rename,
  syncDirectory,
  unlink,
  writeAll,
} from "./fs.js";

/**
 * A writer's first MiB is written as it comes (small blobs and links never need more). Beyond that
 * the chunks (64 KiB from a socket) are copied into 1 MiB batches, each written at its own
 * position while the next fills, several at once: one thread-pool round trip per MiB instead of
 * one per chunk, which was the largest cost on the event loop during a large push (finding 4 in
 * docs/performance.md). The batches' memory is reused.
 */
const DIRECT_WRITES = 1024 * 1024;
const BATCH_SIZE = 1024 * 1024;
/** Batches one writer may have in flight at once (8 MiB): its backpressure. */
const BATCHES_IN_FLIGHT = 8;
/**
 * Every this many bytes a large writer starts an fdatasync in the background (one at a time), so
 * that the disk writes while the rest arrives instead of all at the fsync of commit: on a machine
 * with a lot of memory, a whole blob fits in the page cache before the kernel starts writing it.
 */
const SYNC_EVERY = 64 * 1024 * 1024;
/** Batch memory kept for reuse between writers; beyond this, spare batches are dropped. */
const SPARE_BATCHES = 8;
const spareBatches: Buffer[] = [];

/** A writer appending to its own hidden file; see the top of this file for the names. */
export class FilesystemWriter implements FileWriter {
  private readonly state: WriterState;
  /** Where the next write to the file goes: `written` less what waits in `batch`. */
  private position: number;
  /** The batch being filled, and how much of it is. */
  private batch: Buffer | undefined;
  private batchLength = 0;
  /** Batches being written; each settles (never rejects) when its write is done. */
  private readonly writing = new Set<Promise<void>>();
  /** The background fdatasync in flight, if any (never rejects), and the position it started at. */
  private syncing: Promise<void> | undefined;
  private syncedTo = 0;
  /** The first failed write or background sync: every later call rejects with it. */
  private failed: Error | undefined;
  /**
   * Where the file stops being known good after a failure (a full disk, say): the start of the
   * first write that failed, or the last synced position when a sync failed. Close keeps the file
   * up to there, so the bytes before it stay resumable.
   */
  private failedAt: number | undefined;
  /** The position the last successful background sync covered. */
  private durable: number;

  constructor(
    private readonly driver: FilesystemDriver,
    private readonly path: StoragePath,
    private readonly full: string,
    private readonly file: string,
    private readonly fd: number,
    private written: number,
  ) {
    this.position = written;
    this.syncedTo = written;
    this.durable = written;
    this.state = new WriterState(NAME, path);
  }

  get size(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.state.check();
    try {
      if (this.failed !== undefined) throw this.failed;
      if (this.batch === undefined && this.written < DIRECT_WRITES) {
        try {
          await writeAll(this.fd, chunk, this.position);
        } catch (error) {
          this.fail(error, this.position);
          throw error;
        }
        this.position += chunk.length;
      } else {
        await this.addToBatches(chunk);
      }
    } catch (error) {
      throw this.driver.failure(error, "write", this.path);
    }
    this.written += chunk.length;
  }

  /** Copies `chunk` into batches, writing each full one. */
  private async addToBatches(chunk: Uint8Array): Promise<void> {
    for (let offset = 0; offset < chunk.length;) {
      this.batch ??= spareBatches.pop() ?? Buffer.allocUnsafeSlow(BATCH_SIZE);
      const length = Math.min(chunk.length - offset, BATCH_SIZE - this.batchLength);
      this.batch.set(chunk.subarray(offset, offset + length), this.batchLength);
      this.batchLength += length;
      offset += length;
      if (this.batchLength === BATCH_SIZE) await this.sendBatch();
    }
  }

  private async sendBatch(): Promise<void> {
    while (this.writing.size >= BATCHES_IN_FLIGHT) await Promise.race(this.writing);
    if (this.failed !== undefined) throw this.failed;
    const batch = this.batch!;
    const length = this.batchLength;
    this.batch = undefined;
    this.batchLength = 0;
    const start = this.position;
    const write: Promise<void> = writeAll(this.fd, batch.subarray(0, length), start)
      .catch((error: Error) => this.fail(error, start))
      .finally(() => {
        this.writing.delete(write);
        giveBackBatch(batch);
      });
    this.position += length;
    this.writing.add(write);
    if (this.syncing === undefined && this.position - this.syncedTo >= SYNC_EVERY) {
      const durable = this.durable;
      const syncing = (this.syncedTo = this.position);
      // A write error the kernel reports to this sync is not reported again to the fsync of
      // commit, so it fails the writer.
      this.syncing = fdDataSync(this.fd)
        .then(() => {
          this.durable = Math.max(this.durable, syncing);
        })
        .catch((error: Error) => this.fail(error, durable))
        .finally(() => {
          this.syncing = undefined;
        });
    }
  }

  /**
   * Waits for the batches being written (the file must not be closed under them), then writes
   * what is in the last batch when `flush` is set. Rejects when a batch failed.
   */
  private async finishWrites(flush: boolean): Promise<void> {
    await Promise.all([...this.writing, this.syncing]);
    const batch = this.batch;
    this.batch = undefined;
    try {
      if (this.failed !== undefined) throw this.failed;
      if (flush && batch !== undefined) {
        try {
          await writeAll(this.fd, batch.subarray(0, this.batchLength), this.position);
        } catch (error) {
          this.fail(error, this.position);
          throw error;
        }
        this.position += this.batchLength;
      }
    } finally {
      if (batch !== undefined) giveBackBatch(batch);
    }
  }

  /** Records a failed write (or sync) of the bytes from `from` on. */
  private fail(error: unknown, from: number): void {
    this.failed ??= error instanceof Error ? error : new Error(String(error));
    this.failedAt = Math.min(this.failedAt ?? from, from);
  }

  async close(): Promise<void> {
    this.state.end("closed");
    try {
      try {
        // After a failed write the file keeps what was written before it, and close still rejects
        // with the failure (the writer's size says what was kept).
        await this.finishWrites(true).catch(() => {});
        if (this.failedAt !== undefined) {
          await fdTruncate(this.fd, this.failedAt);
          this.written = this.failedAt;
        }
        // Synced: a registry acknowledges what a closed writer kept (an upload's 202), so it must
        // survive a crash of the machine, not only of the process.
        await fdDataSync(this.fd);
      } finally {
        await fdClose(this.fd);
        this.driver.released(this.file);
      }
      await rename(this.file, closedWriterName(this.full));
      await syncDirectory(dirname(this.full));
      if (this.failed !== undefined) throw this.failed;
    } catch (error) {
      throw this.driver.failure(error, "close", this.path);
    }
  }

  async cancel(): Promise<void> {
    this.state.end("cancelled");
    try {
      await this.finishWrites(false).catch(() => {});
      await fdClose(this.fd);
      this.driver.released(this.file);
      await unlink(this.file).catch((error) => {
        if (errorCode(error) !== "ENOENT") throw error;
      });
      await this.driver.removeEmptyDirectories(dirname(this.full));
    } catch (error) {
      throw this.driver.failure(error, "cancel", this.path);
    }
  }

  async commit(): Promise<void> {
    this.state.end("committed");
    try {
      try {
        await this.finishWrites(true);
        await fdSync(this.fd);
      } finally {
        await fdClose(this.fd);
        this.driver.released(this.file);
      }
      await this.driver.publish(this.file, this.full);
    } catch (error) {
      throw this.driver.failure(error, "commit", this.path);
    }
  }
}

function giveBackBatch(batch: Buffer): void {
  if (spareBatches.length < SPARE_BATCHES) spareBatches.push(batch);
}
