// Appending a writer's content to an open file: the filesystem driver's writer, and Berth's side of
// an out-of-process driver's local writes (protocol 1.2, driver/remote), which write a driver's
// file exactly as the in-process writer does.

import { fdatasync, write } from "node:fs";
import { promisify } from "node:util";

const fdWrite = promisify(write);
const fdDataSync = promisify(fdatasync);

/** Writes all of `chunk` at `position` (file systems may write less than asked). */
export async function writeAll(fd: number, chunk: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const at = position + offset;
    const { bytesWritten } = await fdWrite(fd, chunk, offset, chunk.length - offset, at);
    offset += bytesWritten;
  }
}

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
 * Batches all writers together may have in flight beyond each one's first (16 MiB). Without it,
 * pushes at 50 in flight (the zb mix at c=50, 12 pushes among 38 pulls) on a loaded machine,
 * where the writes wait for the thread pool, held up to 8 MiB each.
 */
export const SHARED_BATCHES = 16;
let batchesInFlight = 0;

/** The batches in flight now beyond each writer's first (at most SHARED_BATCHES). */
export function sharedBatchesInFlight(): number {
  return batchesInFlight;
}
/**
 * Every this many bytes a large writer starts an fdatasync in the background (one at a time), so
 * that the disk writes while the rest arrives instead of all at the fsync of commit: on a machine
 * with a lot of memory, a whole blob fits in the page cache before the kernel starts writing it.
 */
const SYNC_EVERY = 64 * 1024 * 1024;
/**
 * The first background sync starts this far into what a writer was given, and each next one once
 * as much again is unsynced as was synced before it, up to SYNC_EVERY: a writer that gets 8 MiB
 * (one PATCH of a chunked push, which close() must sync before its 202) syncs half of it while the
 * other half arrives, and a 1 GiB writer makes four syncs more than it would at SYNC_EVERY alone.
 */
const FIRST_SYNC = 4 * 1024 * 1024;
/** Batch memory kept for reuse between writers; beyond this, spare batches are dropped. */
const SPARE_BATCHES = 8;
const spareBatches: Buffer[] = [];
/** When (performance.now()) a batch was last taken or given back. */
let batchesLastUsed = Number.NEGATIVE_INFINITY;

/** When (performance.now()) a writer last took or gave back a batch; -Infinity: never. */
export function batchesLastUsedAt(): number {
  return batchesLastUsed;
}

/**
 * Lets go of the spare batches (an idle server's memory, or a push's once pulls took over:
 * ./spares.ts; the next large writer allocates anew); returns their bytes.
 */
export function dropSpareBatches(): number {
  let bytes = 0;
  for (const buffer of spareBatches.splice(0)) bytes += buffer.length;
  return bytes;
}

/**
 * Appends to file descriptor `fd` from position `start`. Errors are the file system's own; the
 * first failed write or background sync fails every later call, and `failedAt` says where the
 * file stops being known good. The caller owns `fd` (closes it after `finish`).
 */
export class FileAppender {
  /** Bytes taken by write(): what is written plus what waits in `batch`. */
  written: number;
  /** Where the next write to the file goes: `written` less what waits in `batch`. */
  private position: number;
  /** The batch being filled, and how much of it is. */
  private batch: Buffer | undefined;
  private batchLength = 0;
  /** Batches being written, with the position each starts at; each settles (never rejects). */
  private readonly writing = new Map<Promise<void>, number>();
  /** The background fdatasync in flight, if any (never rejects), and the position it started at. */
  private syncing: Promise<void> | undefined;
  private syncedTo: number;
  /** Where this appender started: the bytes it was given are those after it. */
  private readonly start: number;
  /** The first failed write or background sync: every later call rejects with it. */
  failed: Error | undefined;
  /**
   * Where the file stops being known good after a failure (a full disk, say): the start of the
   * first write that failed, or the last synced position when a sync failed. A close keeps the
   * file up to there, so the bytes before it stay resumable.
   */
  failedAt: number | undefined;
  /** The position the last successful background sync covered. */
  private durable: number;
  /** Background syncs started (see FIRST_SYNC and SYNC_EVERY). */
  backgroundSyncs = 0;

  constructor(
    readonly fd: number,
    start: number,
  ) {
    this.written = start;
    this.position = start;
    this.syncedTo = start;
    this.durable = start;
    this.start = start;
  }

  /** Unsynced bytes at which the next background sync starts (see FIRST_SYNC). */
  private get nextSyncAfter(): number {
    return Math.min(SYNC_EVERY, Math.max(FIRST_SYNC, this.syncedTo - this.start));
  }

  /** Appends `chunk` (the caller may reuse it once this resolves). */
  async write(chunk: Uint8Array): Promise<void> {
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
    this.written += chunk.length;
  }

  /** Copies `chunk` into batches, writing each full one. */
  private async addToBatches(chunk: Uint8Array): Promise<void> {
    for (let offset = 0; offset < chunk.length;) {
      this.batch ??= takeBatch();
      const length = Math.min(chunk.length - offset, BATCH_SIZE - this.batchLength);
      this.batch.set(chunk.subarray(offset, offset + length), this.batchLength);
      this.batchLength += length;
      offset += length;
      if (this.batchLength === BATCH_SIZE) await this.sendBatch();
    }
  }

  private async sendBatch(): Promise<void> {
    while (
      this.writing.size >= BATCHES_IN_FLIGHT ||
      (this.writing.size > 0 && batchesInFlight >= SHARED_BATCHES)
    ) {
      await Promise.race(this.writing.keys());
    }
    if (this.failed !== undefined) throw this.failed;
    const batch = this.batch!;
    const length = this.batchLength;
    this.batch = undefined;
    this.batchLength = 0;
    const start = this.position;
    // A writer's first batch in flight is its own; the others count against SHARED_BATCHES.
    const shared = this.writing.size > 0;
    if (shared) batchesInFlight++;
    const write: Promise<void> = writeAll(this.fd, batch.subarray(0, length), start)
      .catch((error: Error) => this.fail(error, start))
      .finally(() => {
        if (shared) batchesInFlight--;
        this.writing.delete(write);
        giveBackBatch(batch);
      });
    this.position += length;
    this.writing.set(write, start);
    if (this.syncing === undefined && this.position - this.syncedTo >= this.nextSyncAfter) {
      const durable = this.durable;
      this.syncedTo = this.position;
      // What the sync covers for sure: the bytes before the first batch still being written (the
      // sync may run on another pool thread before that write does).
      const covered = Math.min(this.position, ...this.writing.values());
      this.backgroundSyncs++;
      // A write error the kernel reports to this sync is not reported again to the fsync of
      // commit, so it fails the writer.
      this.syncing = fdDataSync(this.fd)
        .then(() => {
          this.durable = Math.max(this.durable, covered);
        })
        .catch((error: Error) => this.fail(error, durable))
        .finally(() => {
          this.syncing = undefined;
        });
    }
  }

  /**
   * Waits for the batches being written (the file must not be closed under them), then writes
   * what is in the last batch when `flush` is set (without it, that batch is dropped). Rejects
   * when a write failed. Writes may follow.
   */
  async finish(flush: boolean): Promise<void> {
    await Promise.all([...this.writing.keys(), this.syncing]);
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
      this.batchLength = 0;
      if (batch !== undefined) giveBackBatch(batch);
    }
  }

  /**
   * After the file was written by someone else from where this one stopped (finished): goes on
   * at `size`. For the filesystem writer whose file Berth wrote (protocol 1.2).
   */
  continueAt(size: number): void {
    this.written = this.position = this.syncedTo = size;
  }

  /** Records a failed write (or sync) of the bytes from `from` on. */
  fail(error: unknown, from: number): void {
    this.failed ??= error instanceof Error ? error : new Error(String(error));
    this.failedAt = Math.min(this.failedAt ?? from, from);
  }
}

function takeBatch(): Buffer {
  batchesLastUsed = performance.now();
  return spareBatches.pop() ?? Buffer.allocUnsafeSlow(BATCH_SIZE);
}

function giveBackBatch(batch: Buffer): void {
  batchesLastUsed = performance.now();
  if (spareBatches.length < SPARE_BATCHES) spareBatches.push(batch);
}
