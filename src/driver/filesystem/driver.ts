// Over 400 lines: one class whose methods are the contract on a file tree; its fs calls, copy and
// writer live beside it (fs.ts, copy.ts, writer.ts).
//
// The filesystem driver: storage paths map to files below a root directory. Content is published
// atomically (written to a hidden file in the same directory, fsynced, renamed over the target,
// then the directory fsynced), so a reader or a crash sees the old or the new content, never a mix.
//
// Files the driver keeps for itself sit next to the path they belong to, under names that contain
// `~`, a character no storage path can hold, so they never show in list, stat, walk or a reader:
//
//   <name>~writer           the bytes of a writer that was closed; `writer(path, true)` resumes it,
//                           also in another process, by renaming it to ...
//   <name>~open-<owner>-<n>.<base>  the file of a writer in use (one per writer, so two never mix
//                           bytes), started at size <base>
//   <name>~tmp-<owner>-<n>  a putContent on its way
//
// Those a crash leaves behind are found by their owner (sidecars.ts): a writer's file goes back to
// being the closed writer, cut to its base (so what was acknowledged resumes, also right after a
// restart), the rest is removed, by a background sweep of the tree when the driver is created.
//
// A directory with no stored file below it is treated as absent, as on an object store (so a
// directory holding only a writer's files does not show), and the driver removes directories that
// delete, move or cancel leave empty.

import { open, rm, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Dirent, Stats } from "node:fs";
import type { Readable, Writable } from "node:stream";
import {
  AbortedError,
  BackendError,
  DestinationClosedError,
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  type CallOptions,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
  type WriterOptions,
} from "../driver.js";
import { isValidPath, isValidPathOrRoot, joinPath } from "../paths.js";
import { copyRange } from "../copy.js";
import {
  FIRST_READ,
  NAME,
  NOT_FOUND,
  READ_NOFOLLOW,
  RETRIES,
  TOUCH_NOFOLLOW,
  UPDATE_NOFOLLOW,
  closedWriterName,
  errorCode,
  fdClose,
  fdOpen,
  fdRead,
  fdReadFile,
  fdStat,
  fdSync,
  lstat,
  makeDirectory,
  mkdir,
  outsideRoot,
  realpath,
  rename,
  rmdir,
  sidecarName,
  syncDirectory,
  storedEntries,
  holdsStoredFiles,
  anyStoredFile,
  isFile,
  link,
  unlink,
  unlinkIfPresent,
  writeAll,
} from "./fs.js";
import { FilesystemWriter } from "./writer.js";
import { liveFiles, recoverWriter, sweep, type SweepResult } from "./sidecars.js";

/**
 * Operations for which those errors mean PathNotFoundError. Elsewhere they mean something else:
 * putContent below a file, say, is a backend failure, not a missing path.
 */
const LOOKUPS = new Set(["getContent", "reader", "copyTo", "stat", "list", "walk", "delete"]);

/** unlink errors after which delete looks at what is at the path before removing it. */
const DELETE_FALLBACK = new Set(["ENOENT", "ENOTDIR", "EISDIR", "EPERM"]);

/** How long a directory judged inside the root is trusted, and how many are remembered. */
const CONFINED_TTL_MS = 5_000;
const CONFINED_MAX = 10_000;

/** Stores content as files below a root directory. Create it with `createFilesystemDriver`. */
export class FilesystemDriver implements StorageDriver {
  readonly name = NAME;
  /** The absolute root directory; every stored file is below it. */
  readonly rootDirectory: string;
  private readonly rootPrefix: string;
  /** The root with its own links resolved, to compare real paths with. */
  private realRoot: Promise<string> | undefined;
  /**
   * Directories whose real path was found inside the root, with the performance.now() at which
   * that judgement expires: checked once, then trusted for a few seconds, so a blob HEAD costs one
   * lookup here instead of a realpath. The driver makes no links, so a directory turns into one
   * only by someone else's hand. A Map, not lru-cache: about ten lookups a push, and lru-cache's
   * `has` with a TTL showed as 18% of confine's time in the small-push profile.
   */
  private readonly confined = new Map<string, number>();
  /** This process's own files in use (writers' and putContent's): never reclaimed. */
  private readonly live = liveFiles;
  /** The sweep of abandoned files started by `startSweep`, if any. */
  sweeping: Promise<SweepResult> | undefined;

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
      const full = this.fullPath(path);
      await this.confine(dirname(full));
      fd = await fdOpen(full, READ_NOFOLLOW);
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

  putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    return this.put(path, content, true, "putContent");
  }

  /**
   * putContent without its two fsyncs (the file's and the directory's): still a temporary file
   * renamed over the path, so a reader sees the old or the new content, never a mix; a crash of
   * the machine may leave the old content, none, or an empty file (the contract allows it).
   */
  putContentUnsynced(path: StoragePath, content: Uint8Array): Promise<void> {
    return this.put(path, content, false, "putContentUnsynced");
  }

  private async put(
    path: StoragePath,
    content: Uint8Array,
    durable: boolean,
    operation: string,
  ): Promise<void> {
    const full = this.fullPath(path);
    try {
      await this.ensureDirectory(dirname(full));
      for (let attempt = 0; ; attempt++) {
        const { name, fd } = await this.createSidecar(full, attempt === 0);
        try {
          await writeAll(fd, content, 0);
          if (durable) await fdSync(fd);
        } catch (error) {
          await fdClose(fd);
          await unlink(name).catch(() => {});
          this.live.delete(name);
          throw error;
        }
        await fdClose(fd);
        try {
          await this.publish(name, full, durable);
          return;
        } catch (error) {
          // A concurrent delete removed the directory, temporary file and all (garbage collection
          // removing a revision while a push writes its link): that delete came first, so write
          // again rather than fail the put.
          if (!(await this.lostToDelete(error, name, attempt))) throw error;
        } finally {
          this.live.delete(name);
        }
      }
    } catch (error) {
      throw this.failure(error, operation, path);
    }
  }

  /**
   * True when a rename or link of the driver's file `name` failed because a concurrent delete
   * removed its directory (the file is gone too), and the operation may start again.
   */
  private async lostToDelete(error: unknown, name: string, attempt: number): Promise<boolean> {
    if (errorCode(error) !== "ENOENT" || attempt >= RETRIES) return false;
    return !(await lstat(name).then(
      () => true,
      () => false,
    ));
  }

  /** O_EXCL by a hard link: the complete temp file appears at `full` only if nothing is there. */
  async putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    const full = this.fullPath(path);
    try {
      await this.ensureDirectory(dirname(full));
      for (let attempt = 0; ; attempt++) {
        const { name, fd } = await this.createSidecar(full, attempt === 0);
        try {
          try {
            await writeAll(fd, content, 0);
            await fdSync(fd);
          } finally {
            await fdClose(fd);
          }
          try {
            await link(name, full);
          } catch (error) {
            if (errorCode(error) === "EEXIST") return false;
            // The directory went with a concurrent delete (see putContent): try again.
            if (await this.lostToDelete(error, name, attempt)) continue;
            throw error;
          }
          await syncDirectory(dirname(full));
          return true;
        } finally {
          await unlink(name).catch(() => {});
          this.live.delete(name);
        }
      }
    } catch (error) {
      throw this.failure(error, "putContentIfAbsent", path);
    }
  }

  /**
   * An open with O_TRUNC: an existing file keeps its inode (it is never absent) and gets the
   * file system's time as its mtime (POSIX marks it for update), a missing one is created empty.
   * Nothing is synced, which the contract allows: 2 calls where putContent takes 8 with 2 fsyncs.
   */
  async touch(path: StoragePath): Promise<void> {
    const full = this.fullPath(path);
    try {
      await this.ensureDirectory(dirname(full));
      for (let attempt = 0; ; attempt++) {
        let fd: number;
        try {
          fd = await fdOpen(full, TOUCH_NOFOLLOW);
        } catch (error) {
          // A concurrent delete removed the directory: make it again.
          if (errorCode(error) !== "ENOENT" || attempt >= RETRIES) throw error;
          await this.makeDirectory(dirname(full));
          continue;
        }
        await fdClose(fd);
        return;
      }
    } catch (error) {
      throw this.failure(error, "touch", path);
    }
  }

  async reader(path: StoragePath, offset = 0): Promise<Readable> {
    const full = this.fullPath(path);
    let handle: FileHandle | undefined;
    try {
      await this.confine(dirname(full));
      handle = await open(full, READ_NOFOLLOW);
      if (!(await handle.stat()).isFile()) throw new PathNotFoundError(NAME, path);
    } catch (error) {
      await handle?.close();
      throw this.failure(error, "reader", path);
    }
    // The stream closes the handle when it ends or is destroyed. An offset past the end reads
    // nothing and ends at once.
    return handle.createReadStream({ start: offset });
  }

  /**
   * The local file that holds `path`'s content (checked as copyTo checks it), for a process on
   * this machine that reads it itself: the out-of-process protocol's LocalFile (driver/remote).
   */
  async localFile(path: StoragePath): Promise<string> {
    const full = this.fullPath(path);
    try {
      await this.confine(dirname(full));
    } catch (error) {
      throw this.failure(error, "localFile", path);
    }
    return full;
  }

  async copyTo(
    path: StoragePath,
    destination: Writable,
    offset: number,
    length?: number,
    options?: CallOptions,
  ): Promise<void> {
    const full = this.fullPath(path);
    const signal = options?.signal;
    let handle: FileHandle | undefined;
    try {
      await this.confine(dirname(full));
      handle = await open(full, READ_NOFOLLOW);
      const info = await handle.stat();
      if (!info.isFile()) throw new PathNotFoundError(NAME, path);
      const end = length === undefined ? info.size : Math.min(info.size, offset + length);
      await copyRange(
        handle,
        destination,
        offset,
        end,
        (cause) => new DestinationClosedError(NAME, path, cause),
        signal && { signal, error: () => new AbortedError(NAME, "copyTo", path, signal.reason) },
      );
    } catch (error) {
      throw this.failure(error, "copyTo", path);
    } finally {
      await handle?.close();
    }
  }

  async writer(path: StoragePath, append: boolean, options?: WriterOptions): Promise<FileWriter> {
    const full = this.fullPath(path);
    const closed = closedWriterName(full);
    try {
      const dir = dirname(full);
      const near = options?.newIfMissing === true ? options.stageNear : undefined;
      if (append && near !== undefined && near !== path && !(await this.confine(dir))) {
        // Nothing to resume (no directory), and the bytes will most likely be published at
        // `near`: written in its directory, they need no directory of their own (an upload's
        // mkdir and rmdir), and are published within it (publishBeside). A `~tmp-` file: a crash
        // before the writer ends leaves bytes nobody acknowledged, which the sweep removes.
        const staged = this.fullPath(near);
        const made = await this.ensureDirectory(dirname(staged));
        const { name, fd } = await this.createSidecar(staged, true, "tmp");
        return new FilesystemWriter(this, path, full, name, fd, 0, made ? "made" : "found");
      }
      if (append && options?.newIfMissing === true && (await this.ensureDirectory(dir))) {
        // A directory this call made held nothing to resume: an upload's first bytes take one
        // mkdir here, where a failed lookup, then writer(path, false)'s mkdir took two.
        const { name, fd } = await this.createSidecar(full, true, "open");
        return new FilesystemWriter(this, path, full, name, fd, 0);
      }
      if (!append) {
        // A fresh writer starts empty: whatever an earlier writer closed is discarded (in a
        // directory just made, nothing is).
        if (!(await this.ensureDirectory(dir))) {
          await unlinkIfPresent(closed);
        }
        const { name, fd } = await this.createSidecar(full, true, "open");
        return new FilesystemWriter(this, path, full, name, fd, 0);
      }
      // No directory, no writer to resume (a new upload's first write): 2 lookups fewer.
      if (!(await this.confine(dir))) throw new PathNotFoundError(NAME, path);
      // Claiming the closed writer's file by renaming it makes the resumption exclusive: a second
      // writer(path, true) finds nothing to resume. Without one, a crashed writer's may be there.
      let name = await this.claim(closed);
      if (name === undefined && (await recoverWriter(full, this.live))) {
        name = await this.claim(closed);
      }
      if (name === undefined) throw new PathNotFoundError(NAME, path);
      let fd: number | undefined;
      try {
        // Not "a": with O_APPEND, Linux ignores the positions of the writer's concurrent writes.
        fd = await fdOpen(name, UPDATE_NOFOLLOW);
        const { size } = await fdStat(fd);
        if (!name.endsWith(`.${size.toString(36)}`)) {
          // Another process closed it again between our stat and rename: name the right base.
          const renamed = sidecarName(full, "open", size);
          this.live.add(renamed);
          await rename(name, renamed);
          this.live.delete(name);
          name = renamed;
        }
        // The close that left these bytes synced them.
        return new FilesystemWriter(this, path, full, name, fd, size);
      } catch (error) {
        // Give the claimed bytes back so that a later attempt can resume them.
        if (fd !== undefined) await fdClose(fd).catch(() => {});
        await rename(name, closed).catch(() => {});
        this.live.delete(name);
        throw error;
      }
    } catch (error) {
      throw this.failure(error, "writer", path);
    }
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    const full = this.fullPath(path, true);
    try {
      // A link is not something the driver stored: lstat, and it is neither file nor directory.
      // Looked at before its directory is judged: a missing path (a blob not stored yet) costs
      // one call, and what was found is only answered once confine has passed the directory.
      const info = await lstat(full);
      if (path !== "/") await this.confine(dirname(full));
      if (info.isFile()) return { path, size: info.size, modTime: info.mtime, isDir: false };
      if (info.isDirectory() && (path === "/" || (await holdsStoredFiles(full)))) {
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
      await this.confine(full);
      for (const entry of await storedEntries(full)) {
        if (entry.isDirectory() && !(await holdsStoredFiles(join(full, entry.name)))) continue;
        children.push(joinPath(path, entry.name));
      }
    } catch (error) {
      if (path === "/" && errorCode(error) === "ENOENT") return [];
      // A file has no children, as on the other drivers; only a path that is nothing is missing.
      if (errorCode(error) === "ENOTDIR" && (await isFile(full))) return [];
      throw this.failure(error, "list", path);
    }
    if (children.length === 0 && path !== "/") throw new PathNotFoundError(NAME, path);
    return children;
  }

  async move(sourcePath: StoragePath, destPath: StoragePath): Promise<void> {
    const from = this.fullPath(sourcePath);
    const to = this.fullPath(destPath);
    try {
      await this.confine(dirname(from));
      await this.requireFile(from, sourcePath);
      if (from === to) return;
      await this.ensureDirectory(dirname(to));
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0) await this.makeDirectory(dirname(to));
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
      await this.confine(dirname(full));
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
        if (info.isDirectory()) stored = await holdsStoredFiles(full);
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
      await this.confine(full);
      entries = await storedEntries(full);
      visible = path === "/" || (await anyStoredFile(full, entries));
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
        info = await lstat(childFull);
        if (info.isDirectory()) {
          children = await storedEntries(childFull);
          visible = await anyStoredFile(childFull, children);
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

  /**
   * Refuses a directory whose real path leaves the root: a symbolic link planted in the tree must
   * not let a read, write, list, walk, move or delete reach outside it. A directory that does not
   * exist yet is judged by its nearest existing ancestor (mkdir below that creates real
   * directories). The last component of a file is guarded by O_NOFOLLOW and lstat instead.
   *
   * Component by component below the root, each directory judged once (then cached): a real
   * directory whose parent is inside the root is inside it too, so one lstat judges it; only a link
   * costs a realpath. The JS realpath before lstat-ed every component from `/` on each call, twice or
   * three times for a directory not there yet: 75 statx per 4 KiB push, 5 now (docs/performance.md).
   * Resolves whether `dir` exists.
   */
  private async confine(dir: string): Promise<boolean> {
    if (dir === this.rootDirectory || this.isConfined(dir)) return true;
    // Not below the root: fullPath never gives one; nothing of the driver's to judge.
    if (!dir.startsWith(this.rootPrefix)) return true;
    if (!(await this.confine(dirname(dir)))) return false;
    let info: Stats;
    try {
      info = await lstat(dir);
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return false;
      throw error;
    }
    if (info.isSymbolicLink()) {
      // A link (the driver makes none): allowed only where it resolves inside the root.
      let real: string;
      try {
        real = await realpath(dir);
      } catch {
        throw outsideRoot(dir);
      }
      this.realRoot ??= realpath(this.rootDirectory).catch(() => this.rootDirectory);
      const root = await this.realRoot;
      if (real !== root && !real.startsWith(root.endsWith(sep) ? root : root + sep)) {
        throw outsideRoot(dir);
      }
    } else if (!info.isDirectory()) {
      // A file where a directory is expected: the call fails on it as it would without the check.
      return true;
    }
    this.markConfined(dir);
    return true;
  }

  /** True while `dir` is known to be inside the root (see `confined`). */
  private isConfined(dir: string): boolean {
    const until = this.confined.get(dir);
    if (until === undefined) return false;
    if (until > performance.now()) return true;
    this.confined.delete(dir);
    return false;
  }

  /** Remembers `dir` as inside the root; past the bound, the longest known goes first. */
  private markConfined(dir: string): void {
    this.confined.delete(dir);
    if (this.confined.size >= CONFINED_MAX) {
      const oldest = this.confined.keys().next();
      if (oldest.done !== true) this.confined.delete(oldest.value);
    }
    this.confined.set(dir, performance.now() + CONFINED_TTL_MS);
  }

  /**
   * Makes sure directory `dir` exists inside the root before something is written in it; true
   * when this call made it. A directory this process knows costs nothing. Below a parent judged
   * inside the root (known, or found by confine's lstat), `dir` is usually new (an upload's, a
   * blob's, a layer link's), so it is made first: one mkdir, where lstat then mkdir took two;
   * EEXIST sends it to confine's lstat like any directory found. A parent that is missing too (a
   * blob's new prefix directory) is made first, then `dir`: two mkdirs, where a lookup and
   * `mkdir -p` (a failed mkdir, then two) took four.
   */
  private async ensureDirectory(dir: string): Promise<boolean> {
    if (dir === this.rootDirectory || this.isConfined(dir)) return false;
    const parent = dirname(dir);
    const parentFound =
      parent === this.rootDirectory || this.isConfined(parent) || (await this.confine(parent));
    if (!parentFound) await this.makeDirectory(parent);
    try {
      await mkdir(dir);
      this.markConfined(dir);
      return true;
    } catch (error) {
      // ENOENT: a concurrent delete took the parent; confine and mkdir -p below sort it out.
      const code = errorCode(error);
      if (code !== "EEXIST" && code !== "ENOENT") throw error;
    }
    if (await this.confine(dir)) return false;
    await this.makeDirectory(dir);
    return true;
  }

  private async requireFile(full: string, path: StoragePath): Promise<void> {
    if (!(await isFile(full))) throw new PathNotFoundError(NAME, path);
  }

  /**
   * Creates one of the driver's own files next to `full`, creating directories as needed. A
   * concurrent delete may remove a directory just created; then it tries again. When confine found
   * the directory (`directoryExists`), the file is tried without mkdir first: a recursive mkdir of
   * an existing directory costs two wasted calls (mkdir failing with EEXIST, then stat); a new
   * upload, blob or link directory is made first.
   */
  private async createSidecar(
    full: string,
    directoryExists: boolean,
    kind: "open" | "tmp" = "tmp",
  ): Promise<{ name: string; fd: number }> {
    for (let attempt = 0; ; attempt++) {
      if (!directoryExists || attempt > 0) await this.makeDirectory(dirname(full));
      const name = sidecarName(full, kind, kind === "open" ? 0 : undefined);
      this.live.add(name);
      try {
        return { name, fd: await fdOpen(name, "wx") };
      } catch (error) {
        this.live.delete(name);
        if (errorCode(error) !== "ENOENT" || attempt >= RETRIES) throw error;
      }
    }
  }

  /**
   * `mkdir -p dir`, after confine judged its nearest existing ancestor: what mkdir creates below it
   * are real directories inside the root, so `dir` needs no lstat of its own afterwards.
   */
  private async makeDirectory(dir: string): Promise<void> {
    await makeDirectory(dir);
    this.markConfined(dir);
  }

  /**
   * Claims the closed writer's file `closed` for a new writer (its name, live) or finds none. The
   * name records the size it starts at.
   */
  private async claim(closed: string): Promise<string | undefined> {
    let size: number;
    try {
      size = (await lstat(closed)).size;
    } catch (error) {
      if (NOT_FOUND.has(errorCode(error) ?? "")) return undefined;
      throw error;
    }
    const name = sidecarName(closed.slice(0, -"~writer".length), "open", size);
    this.live.add(name);
    try {
      await rename(closed, name);
    } catch (error) {
      this.live.delete(name);
      if (NOT_FOUND.has(errorCode(error) ?? "")) return undefined;
      throw error;
    }
    return name;
  }

  /** A writer's or putContent's file is no longer in use (FilesystemWriter). */
  released(name: string): void {
    this.live.delete(name);
  }

  /**
   * Starts the background sweep of files abandoned by crashed writers (sidecars.ts), once. Errors
   * stop it quietly: it is housekeeping, and the next start sweeps again.
   */
  startSweep(): Promise<SweepResult> {
    this.sweeping ??= sweep(this.rootDirectory, this.live, (dir) =>
      this.removeEmptyDirectories(dir),
    ).catch(() => ({ recovered: 0, removed: 0 }));
    return this.sweeping;
  }

  /**
   * Renames the finished file `name` over `full` (replacing a directory there) and, when
   * `durable`, syncs the directory. For FilesystemWriter.
   */
  async publish(name: string, full: string, durable = true): Promise<void> {
    try {
      await rename(name, full);
    } catch (error) {
      const code = errorCode(error);
      if (code !== "EISDIR" && code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
      await rm(full, { recursive: true, force: true, maxRetries: 3 });
      await rename(name, full);
    }
    if (durable) await syncDirectory(dirname(full));
  }

  /**
   * Renames the finished file `name` to storage path `path`, making its directory, and syncs that
   * directory: FilesystemWriter.commitTo. The writer's own directory goes if that left it empty
   * (an upload that stored nothing else: docs/performance.md), but not its parents: an upload's is
   * `_uploads`, which the next upload of the repository would make again. With `ifAbsent`
   * (commitToIfAbsent), a file found at `path` stays and `name` goes instead: false. It is looked
   * for only when the directory was there already. `stagedIn`: the writer kept `name` in a
   * directory it made or found (stageNear); in the destination's, see publishBeside.
   */
  async publishAt(
    name: string,
    path: StoragePath,
    ifAbsent = false,
    stagedIn?: "made" | "found",
  ): Promise<boolean> {
    const full = this.fullPath(path);
    // Written in the destination's directory (stageNear): it is there, and holds the file.
    if (stagedIn !== undefined && dirname(name) === dirname(full)) {
      return this.publishBeside(name, full, ifAbsent && stagedIn === "found");
    }
    const made = await this.ensureDirectory(dirname(full));
    if (ifAbsent && !made && (await isFile(full))) {
      // Stored already (commitToIfAbsent): the stored file stays, this one goes.
      await unlinkIfPresent(name);
      await this.removeEmptyDirectory(dirname(name));
      return false;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.publish(name, full);
        await this.removeEmptyDirectory(dirname(name));
        return true;
      } catch (error) {
        // A concurrent delete removed the directory just made (as in move): make it again.
        if (errorCode(error) !== "ENOENT" || attempt >= RETRIES) throw error;
        await this.makeDirectory(dirname(full));
      }
    }
  }

  /**
   * publishAt for a file in the destination's own directory. With `ifAbsent` (the writer found
   * the directory there: a stored blob's, or a concurrent push's), a link: it fails where a file is
   * stored already, which then keeps its inode. In a directory the writer made, one rename: a
   * concurrent push of the same bytes published meanwhile is replaced by the same bytes.
   */
  private async publishBeside(name: string, full: string, ifAbsent: boolean): Promise<boolean> {
    if (!ifAbsent) {
      await this.publish(name, full);
      return true;
    }
    try {
      await link(name, full);
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
      if (await isFile(full)) {
        await unlinkIfPresent(name);
        return false;
      }
      // Not a file (a directory): replaced, as commitTo replaces it.
      await this.publish(name, full);
      return true;
    }
    await unlinkIfPresent(name);
    await syncDirectory(dirname(full));
    return true;
  }

  /**
   * Makes sure the directory of the driver's file `full` exists: for a writer whose bytes were
   * kept elsewhere (stageNear) before they move to its own path.
   */
  async ensureDirectoryOf(full: string): Promise<void> {
    await this.ensureDirectory(dirname(full));
  }

  /**
   * Removes `dir` if it is empty: true when it is gone (or was), false when it stays (not empty,
   * being filled, or outside the root).
   */
  private async removeEmptyDirectory(dir: string): Promise<boolean> {
    if (!dir.startsWith(this.rootPrefix)) return false;
    try {
      await rmdir(dir);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") return false;
    }
    this.confined.delete(dir);
    return true;
  }

  /**
   * Removes `dir` and its parents up to the root while they are empty, so that a directory without
   * stored files does not linger. A directory that is not empty (or is being filled) stays. For
   * FilesystemWriter too.
   */
  async removeEmptyDirectories(dir: string): Promise<void> {
    let current = dir;
    while (await this.removeEmptyDirectory(current)) current = dirname(current);
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
