// The filesystem driver's FileWriter: a hidden file next to the path, appended to by FileAppender
// (../append.ts: written in batches beyond its first MiB), renamed into place on commit (see
// driver.ts for the names of the files).

import { dirname } from "node:path";
import { FileAppender } from "../append.js";
import {
  InvalidPathError,
  type CommitOptions,
  type FileWriter,
  type StoragePath,
} from "../driver.js";
import { isValidPath } from "../paths.js";
import { WriterState } from "../writer-state.js";
import type { FilesystemDriver } from "./driver.js";
import {
  NAME,
  closedWriterName,
  errorCode,
  fdClose,
  fdDataSync,
  fdStat,
  fdSync,
  fdTruncate,
  rename,
  syncDirectory,
  unlink,
} from "./fs.js";

/** A writer appending to its own hidden file; see the top of this file for the names. */
export class FilesystemWriter implements FileWriter {
  private readonly state: WriterState;
  private readonly appender: FileAppender;
  /** The size at which the file was lent (lendFile) and not yet taken back. */
  private lentAt: number | undefined;

  constructor(
    private readonly driver: FilesystemDriver,
    private readonly path: StoragePath,
    private readonly full: string,
    private readonly file: string,
    private readonly fd: number,
    written: number,
    /** Kept away from the path's directory (stageNear), in a directory this writer made or not. */
    private readonly stagedIn?: "made" | "found",
  ) {
    this.appender = new FileAppender(fd, written);
    this.state = new WriterState(NAME, path);
  }

  get size(): number {
    return this.appender.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.state.check();
    try {
      await this.appender.write(chunk);
    } catch (error) {
      throw this.driver.failure(error, "write", this.path);
    }
  }

  /**
   * Lends the writer's file to another process on this machine (Berth, through protocol 1.2's
   * local writes): writes what is batched and gives the file's name and size, from which the
   * borrower appends. `takeBackFile` then says where it stopped, before the writer ends.
   */
  async lendFile(): Promise<{ file: string; size: number }> {
    this.state.check();
    try {
      await this.appender.finish(true);
    } catch (error) {
      throw this.driver.failure(error, "write", this.path);
    }
    this.lentAt ??= this.appender.written;
    return { file: this.file, size: this.appender.written };
  }

  /**
   * Takes the lent file back at `size` (what the borrower says it wrote; undefined when it went
   * away without saying, which keeps only what the file held when lent). The file must hold at
   * least that much and the size must not be below what was lent; bytes beyond it are cut.
   * Otherwise the writer fails (a later close keeps what it held when lent).
   */
  async takeBackFile(size: number | undefined): Promise<void> {
    const lentAt = this.lentAt;
    if (lentAt === undefined) return;
    this.lentAt = undefined;
    const kept = size ?? lentAt;
    try {
      const actual = (await fdStat(this.fd)).size;
      if (kept < lentAt || actual < kept) {
        throw new Error(
          `the borrower of ${this.file} reported ${kept} bytes, but it was lent at ${lentAt} and holds ${actual}`,
        );
      }
      if (actual > kept) await fdTruncate(this.fd, kept);
      this.appender.continueAt(kept);
    } catch (error) {
      this.appender.fail(error, lentAt);
      throw this.driver.failure(error, "write", this.path);
    }
  }

  async close(): Promise<void> {
    this.state.end("closed");
    try {
      try {
        // After a failed write the file keeps what was written before it, and close still rejects
        // with the failure (the writer's size says what was kept).
        await this.appender.finish(true).catch(() => {});
        const failedAt = this.appender.failedAt;
        if (failedAt !== undefined) {
          await fdTruncate(this.fd, failedAt);
          this.appender.written = failedAt;
        }
        // Synced: a registry acknowledges what a closed writer kept (an upload's 202), so it must
        // survive a crash of the machine, not only of the process.
        try {
          await fdDataSync(this.fd);
        } finally {
          await fdClose(this.fd);
        }
        // Live until renamed, as in publish: a start-up sweep would cut a file of this process
        // that is not live back to its base, losing bytes a client was told are kept.
        await this.keepAtPath();
      } finally {
        this.driver.released(this.file);
      }
      await syncDirectory(dirname(this.full));
      if (this.staged) await this.driver.removeEmptyDirectories(dirname(this.file));
      if (this.appender.failed !== undefined) throw this.appender.failed;
    } catch (error) {
      throw this.driver.failure(error, "close", this.path);
    }
  }

  async cancel(): Promise<void> {
    this.state.end("cancelled");
    try {
      await this.appender.finish(false).catch(() => {});
      await fdClose(this.fd);
      this.driver.released(this.file);
      await unlink(this.file).catch((error) => {
        if (errorCode(error) !== "ENOENT") throw error;
      });
      await this.driver.removeEmptyDirectories(dirname(this.file));
    } catch (error) {
      throw this.driver.failure(error, "cancel", this.path);
    }
  }

  /**
   * commit at another path: one rename of the writer's file to `destination` and that directory's
   * sync, where commit then move take a rename more, a lookup of the source and an rmdir.
   */
  async commitTo(destination: StoragePath): Promise<void> {
    await this.commitAt(destination, false);
  }

  /**
   * commitTo unless a file is at `destination`: then this writer's file goes instead. The mkdir of
   * the destination's directory answers for a new blob; only a directory that was there is looked
   * in.
   */
  commitToIfAbsent(destination: StoragePath): Promise<boolean> {
    return this.commitAt(destination, true);
  }

  /** commitTo and commitToIfAbsent: published or not (FilesystemDriver.publishAt). */
  private async commitAt(destination: StoragePath, ifAbsent: boolean): Promise<boolean> {
    // Refused before the writer ends, so that it can still be committed.
    if (!isValidPath(destination)) throw new InvalidPathError(NAME, destination);
    return this.publish(() =>
      this.driver.publishAt(this.file, destination, ifAbsent, this.stagedIn),
    );
  }

  /** `movedNext`: the bytes are synced, the directory is not (the move syncs its destination's). */
  commit(options?: CommitOptions): Promise<void> {
    return this.publish(async () => {
      if (this.staged) await this.driver.ensureDirectoryOf(this.full);
      await this.driver.publish(this.file, this.full, options?.movedNext !== true);
      if (this.staged) await this.driver.removeEmptyDirectories(dirname(this.file));
    });
  }

  private get staged(): boolean {
    return this.stagedIn !== undefined;
  }

  /** Renames the writer's file to the path's closed writer, making its directory if need be. */
  private async keepAtPath(): Promise<void> {
    if (this.staged) await this.driver.ensureDirectoryOf(this.full);
    await rename(this.file, closedWriterName(this.full));
  }

  /**
   * Ends the writer as committed: the bytes synced and the file closed, then `place` it (renamed
   * into place; when that fails, the bytes stay resumable as a closed writer's). The file
   * stays live until renamed: the start-up sweep (sidecars.ts) takes a file of this process that
   * is not live for a crashed writer's and cuts it back to its base, and commitTo makes the blob's
   * directory between the close and the rename (a kill -9 test caught an emptied blob).
   */
  private async publish<T>(place: () => Promise<T>): Promise<T> {
    this.state.end("committed");
    try {
      try {
        try {
          await this.appender.finish(true);
          await fdSync(this.fd);
        } finally {
          await fdClose(this.fd);
        }
        try {
          return await place();
        } catch (error) {
          // Not published, but synced: kept as a closed writer's bytes, which writer(path, true)
          // resumes whole, rather than a file the sweep or the next resume cuts back to its base.
          await this.keepAtPath().catch(() => undefined);
          throw error;
        }
      } finally {
        this.driver.released(this.file);
      }
    } catch (error) {
      throw this.driver.failure(error, "commit", this.path);
    }
  }
}
