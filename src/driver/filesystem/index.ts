// The filesystem driver: storage paths map to files below a root directory. Content is published
// atomically (written to a hidden file in the same directory, fsynced, renamed over the target,
// then the directory fsynced), so a reader or a crash sees the old or the new content, never a mix.
//
// Files the driver keeps for itself sit next to the path they belong to, under names that contain
// `~`, a character no storage path can hold, so they never show in list, stat, walk or a reader:
//
//   <name>~writer           the bytes of a writer that was closed; `writer(path, true)` resumes it,
//                           also in another process, by renaming it to ...
//   <name>~open-<unique>    the file of a writer in use (one per writer, so two never mix bytes)
//   <name>~tmp-<unique>     a putContent on its way
//
// A directory with no stored file below it is treated as absent, as on an object store (so a
// directory holding only a writer's files does not show), and the driver removes directories that
// delete, move or cancel leave empty.

import { randomBytes } from "node:crypto";
import {
  close as closeCallback,
  constants,
  fdatasync as fdatasyncCallback,
  fstat as fstatCallback,
  fsync as fsyncCallback,
  lstat as lstatCallback,
  mkdir as mkdirCallback,
  open as openCallback,
  read as readCallback,
  readdir as readdirCallback,
  readFile as readFileCallback,
  rename as renameCallback,
  rmdir as rmdirCallback,
  stat as statCallback,
  unlink as unlinkCallback,
  write as writeCallback,
  type Dirent,
} from "node:fs";
import { access, open, opendir, realpath, rm, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import {
  BackendError,
  InvalidParameterError,
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  WriterClosedError,
  type DriverParameters,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
} from "../driver.js";
import { DestinationClosedError } from "../copy.js";
import { registerDriver } from "../factory.js";
import { ParameterReader } from "../parameters.js";
import { isValidPath, isValidPathOrRoot, joinPath } from "../paths.js";

const NAME = "filesystem";

/** Names a storage path can have; every other name in the tree is one of the driver's own files. */
const STORED_NAME = /^[A-Za-z0-9._-]+$/;

/** File system errors that mean "nothing (usable) is at this path". */
const NOT_FOUND = new Set(["ENOENT", "ENOTDIR", "EISDIR"]);

/**
 * Operations for which those errors mean PathNotFoundError. Elsewhere they mean something else:
 * putContent below a file, say, is a backend failure, not a missing path.
 */
const LOOKUPS = new Set(["getContent", "reader", "copyTo", "stat", "list", "walk", "delete"]);

/** unlink errors after which delete looks at what is at the path before removing it. */
const DELETE_FALLBACK = new Set(["ENOENT", "ENOTDIR", "EISDIR", "EPERM"]);

/**
 * Request paths call the file system through the callback API, promisified, and the small-file
 * paths (getContent, putContent, writers, directory syncs) work on plain file descriptors: each
 * call of node:fs/promises costs the event loop about twice as much, a failing one three times
 * (measured, 16 at once: stat 11 → 6 µs, failing rmdir 23 → 8 µs; the 8 calls of a putContent
 * through a FileHandle 200 → 100 µs), and small pushes are limited by the event loop. Every
 * descriptor is closed on every path (there is no FileHandle to close a leaked one). Readers and
 * copyTo keep FileHandles (their streams and large reads gain nothing from this).
 */
const lstat = promisify(lstatCallback);
const mkdir = promisify(mkdirCallback);
const readdir = promisify(readdirCallback);
const rename = promisify(renameCallback);
const rmdir = promisify(rmdirCallback);
const stat = promisify(statCallback);
const unlink = promisify(unlinkCallback);
const fdOpen = promisify(openCallback);
const fdRead = promisify(readCallback);
const fdReadFile = promisify(readFileCallback);
const fdWrite = promisify(writeCallback);
const fdSync = promisify(fsyncCallback);
const fdDataSync = promisify(fdatasyncCallback);
const fdStat = promisify(fstatCallback);
const fdClose = promisify(closeCallback);

/** How often an operation retries when a concurrent delete removed the directory it works in. */
const RETRIES = 5;

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Unique among the processes sharing a root: the process id and random bytes drawn once. A counter
 * makes each name unique within the process, without drawing entropy per name (randomBytes per
 * temporary file showed in the small-push profile).
 */
const SIDECAR_PREFIX = `${process.pid.toString(36)}${randomBytes(6).toString("hex")}`;
let sidecarCounter = 0;

/** A fresh name for one of the driver's own files next to `full`. */
function sidecarName(full: string, kind: "open" | "tmp"): string {
  return `${full}~${kind}-${SIDECAR_PREFIX}-${(sidecarCounter++).toString(36)}`;
}

/**
 * getContent reads this much with its first read: link files (71 bytes) and most manifests fit,
 * so the usual read is open, one read, close (three thread-pool round trips; readFile takes four
 * or more).
 */
const FIRST_READ = 4096;

/** Where a closed writer's bytes wait for `writer(path, true)`. */
function closedWriterName(full: string): string {
  return `${full}~writer`;
}

/** Writes all of `chunk` at `position` (file systems may write less than asked). */
async function writeAll(fd: number, chunk: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const at = position + offset;
    const { bytesWritten } = await fdWrite(fd, chunk, offset, chunk.length - offset, at);
    offset += bytesWritten;
  }
}

/**
 * copyTo reads into buffers of this size and keeps at most COPY_BUFFERS of them in flight per copy
 * (8 MiB): a buffer is read into again only after the destination's write callback says it is
 * done with it. Recycling them, rather than the fresh 64 KiB buffer a read stream allocates per
 * read, is what keeps the garbage collector out of a large pull (measured: server CPU per GiB
 * served 1.1 → 0.55 s). 2 MiB rather than 1 MiB halves the reads and socket writes per GiB
 * (measured: pull 1 GiB 2130–2150 → 2790–2850 MB/s; 4 MiB buffers gained nothing more).
 */
const COPY_BUFFER_SIZE = 2 * 1024 * 1024;
const COPY_BUFFERS = 4;
/** Buffers kept between copies, shared by all of them; beyond this, spare ones are dropped. */
const SPARE_COPY_BUFFERS = 4;
const spareCopyBuffers: Buffer[] = [];

/**
 * Writes bytes [start, end) of `handle` to `destination` with recycled buffers. Rejects when the
 * destination errors or closes first; a read in flight then still completes before it returns,
 * so the caller may close the handle at once.
 */
async function copyRange(
  handle: FileHandle,
  destination: Writable,
  start: number,
  end: number,
): Promise<void> {
  let position = start;
  let writing = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const settled = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const onError = (error: Error) => {
    failure ??= new DestinationClosedError(error);
    settled();
  };
  const onClose = () => {
    failure ??= new DestinationClosedError();
    settled();
  };
  // Waits for a write callback or a failure, whichever comes first.
  const nextEvent = () => new Promise<void>((resolve) => (wake = resolve));
  destination.on("error", onError);
  destination.on("close", onClose);
  try {
    while (position < end) {
      if (destination.destroyed) failure ??= new DestinationClosedError();
      if (failure !== undefined) throw failure;
      if (writing >= COPY_BUFFERS) {
        await nextEvent();
        continue;
      }
      const buffer = spareCopyBuffers.pop() ?? Buffer.allocUnsafeSlow(COPY_BUFFER_SIZE);
      const wanted = Math.min(COPY_BUFFER_SIZE, end - position);
      const { bytesRead } = await handle.read(buffer, 0, wanted, position);
      if (bytesRead === 0) throw new Error(`file ended at ${position}, before ${end}`);
      position += bytesRead;
      if (failure !== undefined || destination.destroyed) continue;
      writing++;
      destination.write(buffer.subarray(0, bytesRead), (error) => {
        writing--;
        // A buffer whose write failed may still be referenced by the destination: not reused.
        if (error) failure ??= new DestinationClosedError(error);
        else if (spareCopyBuffers.length < SPARE_COPY_BUFFERS) spareCopyBuffers.push(buffer);
        settled();
      });
    }
    while (writing > 0 && failure === undefined) await nextEvent();
    if (failure !== undefined) throw failure;
  } finally {
    destination.off("error", onError);
    destination.off("close", onClose);
  }
}

/** Makes a rename or unlink in `dir` durable. */
async function syncDirectory(dir: string): Promise<void> {
  const fd = await fdOpen(dir, "r");
  try {
    await fdSync(fd);
  } finally {
    await fdClose(fd);
  }
}

/** Stores content as files below a root directory. Create it with `createFilesystemDriver`. */
export class FilesystemDriver implements StorageDriver {
  readonly name = NAME;
  /** The absolute root directory; every stored file is below it. */
  readonly rootDirectory: string;
  private readonly rootPrefix: string;

  /** `rootDirectory` must exist; `createFilesystemDriver` checks and creates it. */
  constructor(rootDirectory: string) {
    this.rootDirectory = resolve(rootDirectory);
    this.rootPrefix = this.rootDirectory.endsWith(sep)
      ? this.rootDirectory
      : this.rootDirectory + sep;
  }

  async getContent(path: StoragePath): Promise<Uint8Array> {
    let fd: number | undefined;
    try {
      fd = await fdOpen(this.fullPath(path), "r");
      const first = Buffer.allocUnsafeSlow(FIRST_READ);
      // At the descriptor's position (not positional), so that readFile below goes on from there.
      // A directory fails here with EISDIR: not found, as for readFile.
      const { bytesRead } = await fdRead(fd, first, 0, FIRST_READ, null);
      // A copy of exactly the content, so a small result does not hold on to the whole buffer.
      if (bytesRead < FIRST_READ) return Buffer.from(first.subarray(0, bytesRead));
      return Buffer.concat([first, await fdReadFile(fd)]);
    } catch (error) {
      throw this.failure(error, "getContent", path);
    } finally {
      // The content is read: a failing close loses nothing.
      if (fd !== undefined) await fdClose(fd).catch(() => {});
    }
  }

  async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    const full = this.fullPath(path);
    try {
      const { name, fd } = await this.createSidecar(full, "tmp");
      try {
        await writeAll(fd, content, 0);
        await fdSync(fd);
      } catch (error) {
        await fdClose(fd);
        await unlink(name).catch(() => {});
        throw error;
      }
      await fdClose(fd);
      await this.publish(name, full);
    } catch (error) {
      throw this.failure(error, "putContent", path);
    }
  }

  async reader(path: StoragePath, offset = 0): Promise<Readable> {
    const full = this.fullPath(path);
    let handle: FileHandle | undefined;
    try {
      handle = await open(full, "r");
      if (!(await handle.stat()).isFile()) throw new PathNotFoundError(NAME, path);
    } catch (error) {
      await handle?.close();
      throw this.failure(error, "reader", path);
    }
    // The stream closes the handle when it ends or is destroyed. An offset past the end reads
    // nothing and ends at once.
    return handle.createReadStream({ start: offset });
  }

  async copyTo(
    path: StoragePath,
    destination: Writable,
    offset: number,
    length?: number,
  ): Promise<void> {
    const full = this.fullPath(path);
    let handle: FileHandle | undefined;
    try {
      handle = await open(full, "r");
      const info = await handle.stat();
      if (!info.isFile()) throw new PathNotFoundError(NAME, path);
      const end = length === undefined ? info.size : Math.min(info.size, offset + length);
      await copyRange(handle, destination, offset, end);
    } catch (error) {
      if (error instanceof DestinationClosedError) throw error;
      throw this.failure(error, "copyTo", path);
    } finally {
      await handle?.close();
    }
  }

  async writer(path: StoragePath, append: boolean): Promise<FileWriter> {
    const full = this.fullPath(path);
    const closed = closedWriterName(full);
    try {
      if (!append) {
        // A fresh writer starts empty: whatever an earlier writer closed is discarded.
        await unlink(closed).catch((error) => {
          if (!NOT_FOUND.has(errorCode(error) ?? "")) throw error;
        });
        const { name, fd } = await this.createSidecar(full, "open");
        return new FilesystemWriter(this, path, full, name, fd, 0);
      }
      // Claiming the closed writer's file by renaming it makes the resumption exclusive: a second
      // writer(path, true) finds nothing to resume.
      const name = sidecarName(full, "open");
      try {
        await rename(closed, name);
      } catch (error) {
        if (NOT_FOUND.has(errorCode(error) ?? "")) throw new PathNotFoundError(NAME, path);
        throw error;
      }
      let fd: number | undefined;
      try {
        // Not "a": with O_APPEND, Linux ignores the positions of the writer's concurrent writes.
        fd = await fdOpen(name, "r+");
        const { size } = await fdStat(fd);
        // The close that left these bytes synced them.
        return new FilesystemWriter(this, path, full, name, fd, size);
      } catch (error) {
        // Give the claimed bytes back so that a later attempt can resume them.
        if (fd !== undefined) await fdClose(fd).catch(() => {});
        await rename(name, closed).catch(() => {});
        throw error;
      }
    } catch (error) {
      throw this.failure(error, "writer", path);
    }
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    const full = this.fullPath(path, true);
    try {
      const info = await stat(full);
      if (info.isFile()) return { path, size: info.size, modTime: info.mtime, isDir: false };
      if (info.isDirectory() && (path === "/" || (await this.holdsStoredFiles(full)))) {
        return { path, size: 0, modTime: info.mtime, isDir: true };
      }
    } catch (error) {
      if (path === "/" && errorCode(error) === "ENOENT") {
        return { path, size: 0, modTime: new Date(0), isDir: true };
      }
      throw this.failure(error, "stat", path);
    }
    throw new PathNotFoundError(NAME, path);
  }

  async list(path: StoragePath): Promise<StoragePath[]> {
    const full = this.fullPath(path, true);
    const children: StoragePath[] = [];
    try {
      for (const entry of await this.storedEntries(full)) {
        if (entry.isDirectory() && !(await this.holdsStoredFiles(join(full, entry.name)))) continue;
        children.push(joinPath(path, entry.name));
      }
    } catch (error) {
      if (path === "/" && errorCode(error) === "ENOENT") return [];
      // A file has no children, as on the other drivers; only a path that is nothing is missing.
      if (errorCode(error) === "ENOTDIR" && (await this.isFile(full))) return [];
      throw this.failure(error, "list", path);
    }
    if (children.length === 0 && path !== "/") throw new PathNotFoundError(NAME, path);
    return children;
  }

  async move(sourcePath: StoragePath, destPath: StoragePath): Promise<void> {
    const from = this.fullPath(sourcePath);
    const to = this.fullPath(destPath);
    try {
      await this.requireFile(from, sourcePath);
      if (from === to) return;
      for (let attempt = 0; ; attempt++) {
        await mkdir(dirname(to), { recursive: true });
        try {
          await rename(from, to);
          break;
        } catch (error) {
          const code = errorCode(error);
          if (attempt >= RETRIES) throw error;
          if (code === "EISDIR" || code === "ENOTEMPTY" || code === "EEXIST") {
            // The destination is a directory: a move replaces whatever is there.
            await rm(to, { recursive: true, force: true, maxRetries: 3 });
          } else if (code === "ENOENT") {
            // The source went away, or a concurrent delete removed the new directory: tell apart.
            await this.requireFile(from, sourcePath);
          } else {
            throw error;
          }
        }
      }
      await syncDirectory(dirname(to));
      await this.removeEmptyDirectories(dirname(from));
    } catch (error) {
      throw this.failure(error, "move", sourcePath);
    }
  }

  async delete(path: StoragePath): Promise<void> {
    const full = this.fullPath(path);
    try {
      // Usually a file: unlinking it at once saves the lookups below. A directory (EISDIR on
      // Linux, EPERM elsewhere) or nothing at the path takes the general way.
      try {
        await unlink(full);
        // A closed writer's bytes belong to the path too.
        await unlink(closedWriterName(full)).catch(() => {});
        await this.removeEmptyDirectories(dirname(full));
        return;
      } catch (error) {
        if (!DELETE_FALLBACK.has(errorCode(error) ?? "")) throw error;
      }
      // A closed writer's bytes belong to the path too.
      const hadWriter = await unlink(closedWriterName(full)).then(
        () => true,
        () => false,
      );
      let onDisk = true;
      let stored = true;
      try {
        const info = await lstat(full);
        // A directory holding only writers' files is not in the store; it goes all the same.
        if (info.isDirectory()) stored = await this.holdsStoredFiles(full);
      } catch (error) {
        if (!NOT_FOUND.has(errorCode(error) ?? "")) throw error;
        onDisk = false;
        stored = false;
      }
      if (onDisk) await rm(full, { recursive: true, maxRetries: 3 });
      if (onDisk || hadWriter) await this.removeEmptyDirectories(dirname(full));
      if (!stored) throw new PathNotFoundError(NAME, path);
    } catch (error) {
      throw this.failure(error, "delete", path);
    }
  }

  /** Files are served by the registry itself: there is no URL to redirect to. */
  async redirectURL(): Promise<string | null> {
    return null;
  }

  async walk(path: StoragePath, fn: WalkFn): Promise<void> {
    const full = this.fullPath(path, true);
    let entries: Dirent[];
    let visible: boolean;
    try {
      entries = await this.storedEntries(full);
      visible = path === "/" || (await this.anyStoredFile(full, entries));
    } catch (error) {
      const code = errorCode(error);
      // A file has no descendants; the root of an empty store neither.
      if (code === "ENOTDIR" || (path === "/" && code === "ENOENT")) return;
      throw this.failure(error, "walk", path);
    }
    if (!visible) throw new PathNotFoundError(NAME, path);
    await this.walkDirectory(path, full, entries, fn);
  }

  /** Walks `entries` of directory `full`; true when the callback stopped the walk. */
  private async walkDirectory(
    path: StoragePath,
    full: string,
    entries: Dirent[],
    fn: WalkFn,
  ): Promise<boolean> {
    for (const { name } of entries) {
      const childPath = joinPath(path, name);
      const childFull = join(full, name);
      let info;
      let children: Dirent[] = [];
      let visible = true;
      try {
        info = await stat(childFull);
        if (info.isDirectory()) {
          children = await this.storedEntries(childFull);
          visible = await this.anyStoredFile(childFull, children);
        }
      } catch (error) {
        // Removed while walking (a concurrent delete): not the walker's failure.
        if (NOT_FOUND.has(errorCode(error) ?? "")) continue;
        throw this.failure(error, "walk", childPath);
      }
      if (info.isDirectory()) {
        if (!visible) continue;
        const action = await fn({ path: childPath, size: 0, modTime: info.mtime, isDir: true });
        if (action === "stop") return true;
        if (action === "skip") continue;
        if (await this.walkDirectory(childPath, childFull, children, fn)) return true;
      } else if (info.isFile()) {
        const action = await fn({
          path: childPath,
          size: info.size,
          modTime: info.mtime,
          isDir: false,
        });
        if (action === "stop") return true;
        if (action === "skip") return false;
      }
    }
    return false;
  }

  /**
   * The file system path of a storage path. The base wrapper has checked the path already; this
   * checks again, and that the result lies below the root, so that no input can reach outside it
   * even when the driver is used without the wrapper.
   */
  private fullPath(path: StoragePath, rootAllowed = false): string {
    if (!(rootAllowed ? isValidPathOrRoot(path) : isValidPath(path))) {
      throw new InvalidPathError(NAME, path);
    }
    const full = resolve(this.rootDirectory, `.${path}`);
    if (full !== this.rootDirectory && !full.startsWith(this.rootPrefix)) {
      throw new InvalidPathError(NAME, path);
    }
    return full;
  }

  /** The stored entries of directory `full` (the driver's own files left out), sorted by name. */
  private async storedEntries(full: string): Promise<Dirent[]> {
    const entries = await readdir(full, { withFileTypes: true });
    // Stored names are ASCII, so comparing strings compares bytes.
    return entries
      .filter((entry) => STORED_NAME.test(entry.name))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * True when directory `full` holds a stored file at any depth: only then is it a directory of
   * the store. Stops at the first one found, which is usually the first entry read.
   */
  private async holdsStoredFiles(full: string): Promise<boolean> {
    try {
      for await (const entry of await opendir(full)) {
        if (!STORED_NAME.test(entry.name)) continue;
        if (!entry.isDirectory()) return true;
        if (await this.holdsStoredFiles(join(full, entry.name))) return true;
      }
    } catch (error) {
      if (NOT_FOUND.has(errorCode(error) ?? "")) return false;
      throw error;
    }
    return false;
  }

  /** holdsStoredFiles for a directory whose stored entries have been read already. */
  private async anyStoredFile(full: string, entries: Dirent[]): Promise<boolean> {
    if (entries.some((entry) => !entry.isDirectory())) return true;
    for (const entry of entries) {
      if (await this.holdsStoredFiles(join(full, entry.name))) return true;
    }
    return false;
  }

  private async isFile(full: string): Promise<boolean> {
    try {
      return (await stat(full)).isFile();
    } catch (error) {
      if (NOT_FOUND.has(errorCode(error) ?? "")) return false;
      throw error;
    }
  }

  private async requireFile(full: string, path: StoragePath): Promise<void> {
    if (!(await this.isFile(full))) throw new PathNotFoundError(NAME, path);
  }

  /**
   * Creates one of the driver's own files next to `full`, creating directories as needed. A
   * concurrent delete may remove a directory just created; then it tries again. A writer's file
   * is first tried without mkdir: writers usually start in a directory that exists (an upload's
   * data beside its `startedat`), where a recursive mkdir costs two wasted round trips (mkdir
   * failing with EEXIST, then stat); a putContent often starts a new directory (a link, an upload).
   */
  private async createSidecar(
    full: string,
    kind: "open" | "tmp",
  ): Promise<{ name: string; fd: number }> {
    for (let attempt = 0; ; attempt++) {
      if (kind === "tmp" || attempt > 0) await mkdir(dirname(full), { recursive: true });
      const name = sidecarName(full, kind);
      try {
        return { name, fd: await fdOpen(name, "wx") };
      } catch (error) {
        if (errorCode(error) !== "ENOENT" || attempt >= RETRIES) throw error;
      }
    }
  }

  /**
   * Renames the finished file `name` over `full` (replacing a directory there) and syncs. For
   * FilesystemWriter.
   */
  async publish(name: string, full: string): Promise<void> {
    try {
      await rename(name, full);
    } catch (error) {
      const code = errorCode(error);
      if (code !== "EISDIR" && code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
      await rm(full, { recursive: true, force: true, maxRetries: 3 });
      await rename(name, full);
    }
    await syncDirectory(dirname(full));
  }

  /**
   * Removes `dir` and its parents up to the root while they are empty, so that a directory without
   * stored files does not linger. A directory that is not empty (or is being filled) stays. For
   * FilesystemWriter too.
   */
  async removeEmptyDirectories(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.rootPrefix)) {
      try {
        await rmdir(current);
      } catch (error) {
        if (errorCode(error) !== "ENOENT") return;
      }
      current = dirname(current);
    }
  }

  /** The driver error for a failed file system call (also FilesystemWriter's). */
  failure(error: unknown, operation: string, path: StoragePath): StorageDriverError {
    if (error instanceof StorageDriverError) return error;
    if (LOOKUPS.has(operation) && NOT_FOUND.has(errorCode(error) ?? "")) {
      return new PathNotFoundError(NAME, path, { cause: error });
    }
    return new BackendError(NAME, operation, path, { cause: error });
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
 * Every this many bytes a large writer starts an fdatasync in the background (one at a time), so
 * that the disk writes while the rest arrives instead of all at the fsync of commit: on a machine
 * with a lot of memory, a whole blob fits in the page cache before the kernel starts writing it.
 */
const SYNC_EVERY = 64 * 1024 * 1024;
/** Batch memory kept for reuse between writers; beyond this, spare batches are dropped. */
const SPARE_BATCHES = 8;
const spareBatches: Buffer[] = [];

/** A writer appending to its own hidden file; see the top of this file for the names. */
class FilesystemWriter implements FileWriter {
  private state: "open" | "closed" | "cancelled" | "committed" = "open";
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
  /** The first failed batch write or background sync: every later call rejects with it. */
  private failed: unknown;

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
  }

  get size(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.checkOpen();
    try {
      if (this.failed !== undefined) throw this.failed;
      if (this.batch === undefined && this.written < DIRECT_WRITES) {
        await writeAll(this.fd, chunk, this.position);
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
    const write: Promise<void> = writeAll(this.fd, batch.subarray(0, length), this.position)
      .catch((error: unknown) => {
        this.failed ??= error;
      })
      .finally(() => {
        this.writing.delete(write);
        giveBackBatch(batch);
      });
    this.position += length;
    this.writing.add(write);
    if (this.syncing === undefined && this.position - this.syncedTo >= SYNC_EVERY) {
      this.syncedTo = this.position;
      // A write error the kernel reports to this sync is not reported again to the fsync of
      // commit, so it fails the writer.
      this.syncing = fdDataSync(this.fd)
        .catch((error: unknown) => {
          this.failed ??= error;
        })
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
        await writeAll(this.fd, batch.subarray(0, this.batchLength), this.position);
        this.position += this.batchLength;
      }
    } finally {
      if (batch !== undefined) giveBackBatch(batch);
    }
  }

  async close(): Promise<void> {
    this.end("closed");
    try {
      try {
        // Not synced: what a closed writer kept survives a restart of the process (the page cache
        // holds it); only commit makes content durable, and it syncs everything the file holds,
        // earlier sessions included. Content lost to a power cut before commit cannot be
        // published wrongly either: the registry checks an upload's digest when it completes.
        await this.finishWrites(true);
      } finally {
        await fdClose(this.fd);
      }
      await rename(this.file, closedWriterName(this.full));
    } catch (error) {
      throw this.driver.failure(error, "close", this.path);
    }
  }

  async cancel(): Promise<void> {
    this.end("cancelled");
    try {
      await this.finishWrites(false).catch(() => {});
      await fdClose(this.fd);
      await unlink(this.file).catch((error) => {
        if (errorCode(error) !== "ENOENT") throw error;
      });
      await this.driver.removeEmptyDirectories(dirname(this.full));
    } catch (error) {
      throw this.driver.failure(error, "cancel", this.path);
    }
  }

  async commit(): Promise<void> {
    this.end("committed");
    try {
      try {
        await this.finishWrites(true);
        await fdSync(this.fd);
      } finally {
        await fdClose(this.fd);
      }
      await this.driver.publish(this.file, this.full);
    } catch (error) {
      throw this.driver.failure(error, "commit", this.path);
    }
  }

  private checkOpen(): void {
    if (this.state !== "open") throw new WriterClosedError(NAME, this.path, this.state);
  }

  private end(state: "closed" | "cancelled" | "committed"): void {
    this.checkOpen();
    this.state = state;
  }
}

function giveBackBatch(batch: Buffer): void {
  if (spareBatches.length < SPARE_BATCHES) spareBatches.push(batch);
}

/**
 * Creates a filesystem driver from its parameters: `rootdirectory` (required; a relative path is
 * taken from the working directory) is created if missing. A value that is not a usable
 * directory is an InvalidParameterError now rather than a failure at the first request.
 */
export async function createFilesystemDriver(
  parameters: DriverParameters,
): Promise<FilesystemDriver> {
  const configured = new ParameterReader(NAME, parameters).requiredString("rootdirectory");
  const root = resolve(configured);
  const invalid = (reason: string) =>
    new InvalidParameterError(NAME, "rootdirectory", `${JSON.stringify(configured)} ${reason}`);
  try {
    await mkdir(root, { recursive: true });
  } catch (error) {
    throw invalid(`cannot be created: ${(error as Error).message}`);
  }
  if (!(await stat(root)).isDirectory()) throw invalid("is not a directory");
  try {
    await access(root, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch {
    throw invalid("is not readable and writable");
  }
  return new FilesystemDriver(await realpath(root));
}

registerDriver(NAME, createFilesystemDriver);
