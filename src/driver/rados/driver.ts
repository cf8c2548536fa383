// Over 400 lines: the layout on RADOS (index, stripes, publication, pruning) is one piece.
//
// The rados driver: Berth's storage in a Ceph pool through librados (./librados.ts).
//
// Layout in the pool (docs/driver-rados.md draws it):
// - Each directory has an index object, `berth.dir:<path>` (`berth.dir:/` for the root), whose omap
//   holds one key per child: a file's entry (JSON: size, modification time, and where its bytes
//   are), a subdirectory's hint (`{"t":"d"}`), or, under `~<name>`, a closed writer's state
//   (`~` sorts after every character a path may hold, so these come last and never list).
// - A file's bytes are striped over objects `berth.data.<id>.<n>` of `chunksize` bytes, where `id`
//   is random per written content; content up to INLINE_MAX bytes written by putContent is kept in
//   the entry itself (links, tags: one omap write instead of an object and an entry).
// - Publishing (commit, putContent, move) writes the bytes under a fresh id first, then swaps the
//   entry in one omap write, conditional on the entry it replaces, then removes the old bytes: a
//   reader sees the old or the new entry, both whole.
// - Directory hints are kept with writes and deletes without scanning: a writer sets its entry
//   and then makes sure each ancestor's hint is there; a delete that empties a directory removes
//   its hint and looks again, restoring it if something arrived meanwhile. A hint may outlive its
//   directory for a moment (a race of two deletes); listing checks the hinted directories.

import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  AbortedError,
  BackendError,
  InvalidParameterError,
  PathNotFoundError,
  StorageDriverError,
  type CallOptions,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
} from "../driver.js";
import { comparePaths, joinPath, parentPath } from "../paths.js";
import { WriterState } from "../writer-state.js";
import { Errno, RadosCluster, RadosError, type IoContext } from "./librados.js";
import { DRIVER_NAME, type RadosParameters } from "./parameters.js";

export { loadLibrados } from "./librados.js";

const INDEX_PREFIX = "berth.dir:";
const DATA_PREFIX = "berth.data.";
const PENDING = "~";
const DIRECTORY = '{"t":"d"}';
/** putContent keeps content up to this size in the directory entry. */
const INLINE_MAX = 2048;
/** Keys read from an index per round trip. */
const PAGE = 1000;
/** Largest single read of a reader: a whole stripe up to this. */
const READ_PIECE = 4 * 1024 * 1024;
/** Directories whose indexes walk and list read ahead at once. */
const READ_AHEAD = 16;

/** A file's entry in its directory's index. */
interface FileEntry {
  t: "f";
  /** Size in bytes. */
  s: number;
  /** Modification time, ms since the epoch. */
  m: number;
  /** The data id (stripes `berth.data.<o>.<n>`), unless the content is inline. */
  o?: string;
  /** Stripe size of this content. */
  c?: number;
  /** Inline content, base64. */
  d?: string;
}

/** A closed writer's state, under `~<name>` in the index. */
interface PendingEntry {
  o: string;
  s: number;
  c: number;
}

const indexObject = (dir: StoragePath) => INDEX_PREFIX + dir;
const dataObject = (id: string, stripe: number) => `${DATA_PREFIX}${id}.${stripe}`;
const newDataId = () => randomBytes(12).toString("hex");
const baseName = (path: StoragePath) => path.slice(path.lastIndexOf("/") + 1);

function parseFile(raw: string | undefined): FileEntry | undefined {
  if (raw === undefined) return undefined;
  const entry = JSON.parse(raw) as { t?: string };
  return entry.t === "f" ? (entry as FileEntry) : undefined;
}

const isRados = (error: unknown, ...errnos: number[]) =>
  error instanceof RadosError && errnos.includes(error.errno);

/** Runs `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** The driver: see the top of this file for the layout. */
export class RadosDriver implements StorageDriver {
  readonly name = DRIVER_NAME;

  private constructor(
    private readonly cluster: RadosCluster,
    readonly io: IoContext,
    readonly chunkSize: number,
  ) {}

  /** Connects to the cluster and opens the pool; errors name the configuration, cluster or pool. */
  static async connect(parameters: RadosParameters): Promise<RadosDriver> {
    let cluster: RadosCluster;
    try {
      cluster = await RadosCluster.connect({
        username: parameters.username,
        confFile: parameters.conffile ?? null,
        // Timeouts so that an outage is an error, not a hang, unless the ceph.conf sets its own.
        defaults: [
          ["client_mount_timeout", "300", "15"],
          ["rados_mon_op_timeout", "0", "30"],
          ["rados_osd_op_timeout", "0", "30"],
        ],
        after: parameters.keyring === undefined ? {} : { keyring: parameters.keyring },
      });
    } catch (error) {
      throw connectError(parameters, error);
    }
    let io: IoContext;
    try {
      io = cluster.openPool(parameters.poolname);
    } catch (error) {
      cluster.shutdown();
      if (isRados(error, Errno.ENOENT)) {
        throw new InvalidParameterError(
          DRIVER_NAME,
          "poolname",
          `no pool ${JSON.stringify(parameters.poolname)} in the cluster`,
        );
      }
      throw new BackendError(DRIVER_NAME, `open pool ${parameters.poolname}`, undefined, {
        cause: error,
      });
    }
    return new RadosDriver(cluster, io, parameters.chunksize);
  }

  /** Wraps a librados failure as the contract's error for `operation` on `path`. */
  fail(operation: string, path: StoragePath, error: unknown): Error {
    if (error instanceof StorageDriverError) return error;
    return new BackendError(DRIVER_NAME, operation, path, { cause: error });
  }

  private async guard<T>(operation: string, path: StoragePath, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.fail(operation, path, error);
    }
  }

  // --- the index ---

  /** Every key of directory `dir`'s index, in key order. */
  async readIndex(dir: StoragePath): Promise<Map<string, string>> {
    const entries = new Map<string, string>();
    let after = "";
    for (;;) {
      const page = await this.io.omap(indexObject(dir), after, PAGE);
      for (const { key, value } of page.entries) entries.set(key, value.toString("utf8"));
      if (!page.more || page.entries.length === 0) return entries;
      after = page.entries[page.entries.length - 1]!.key;
    }
  }

  /** The raw value of `key` in directory `dir`'s index. */
  async readKey(dir: StoragePath, key: string): Promise<string | undefined> {
    const page = await this.io.omap(indexObject(dir), "", 0, [key]);
    return page.entries[0]?.value.toString("utf8");
  }

  /** The entry of file `path`, with its raw value; undefined when `path` is no file. */
  async readFile(path: StoragePath): Promise<{ raw: string; entry: FileEntry } | undefined> {
    if (path === "/") return undefined;
    const raw = await this.readKey(parentPath(path), baseName(path));
    const entry = parseFile(raw);
    return entry === undefined ? undefined : { raw: raw!, entry };
  }

  /** True when directory `dir` holds something visible (a file or a subdirectory's hint). */
  private async hasVisible(dir: StoragePath): Promise<boolean> {
    const page = await this.io.omap(indexObject(dir), "", 1);
    const first = page.entries[0]?.key;
    return first !== undefined && !first.startsWith(PENDING);
  }

  /**
   * Sets `key` of `path`'s directory to `value` (and removes `remove`) in one write, when the key
   * still holds `expected` ("" for absent; undefined: whatever it holds), then makes sure every
   * ancestor's hint is there. Resolves false when the condition failed.
   */
  async publish(
    path: StoragePath,
    key: string,
    value: string,
    expected?: string,
    remove?: string[],
  ): Promise<boolean> {
    const dir = parentPath(path);
    try {
      await this.io.operate(indexObject(dir), {
        create: expected !== undefined,
        omapEqual: expected === undefined ? undefined : [[key, expected]],
        omapSet: [[key, value]],
        omapRemove: remove,
      });
    } catch (error) {
      if (isRados(error, Errno.ECANCELED)) return false;
      throw error;
    }
    await this.ensureHints(dir);
    return true;
  }

  /**
   * Makes sure each directory from `dir` up has its hint in its parent: one round trip to read
   * them all, then the missing ones set from the bottom up (a hint after what it points to).
   */
  async ensureHints(dir: StoragePath): Promise<void> {
    const chain: StoragePath[] = [];
    for (let d = dir; d !== "/"; d = parentPath(d)) chain.push(d);
    const present = await Promise.all(
      chain.map(async (d) => (await this.readKey(parentPath(d), baseName(d))) !== undefined),
    );
    for (let i = 0; i < chain.length; i += 1) {
      if (present[i]) continue;
      const d = chain[i]!;
      await this.io.operate(indexObject(parentPath(d)), { omapSet: [[baseName(d), DIRECTORY]] });
    }
  }

  /**
   * After something was removed from `dir`: while a directory is empty, removes its index object
   * (unless written meanwhile) and its hint, then looks again and restores the hints if something
   * arrived in between; then the same one level up.
   */
  async prune(dir: StoragePath): Promise<void> {
    for (let d = dir; d !== "/"; d = parentPath(d)) {
      const page = await this.io.omap(indexObject(d), "", 1);
      if (page.entries.length > 0) return;
      if (page.version > 0n) {
        try {
          await this.io.operate(indexObject(d), { assertVersion: page.version, remove: true });
        } catch (error) {
          if (isRados(error, Errno.ERANGE, Errno.EOVERFLOW)) return; // written meanwhile
          if (!isRados(error, Errno.ENOENT)) throw error;
        }
      }
      try {
        await this.io.operate(indexObject(parentPath(d)), {
          omapEqual: [[baseName(d), DIRECTORY]],
          omapRemove: [baseName(d)],
        });
      } catch (error) {
        if (isRados(error, Errno.ECANCELED, Errno.ENOENT)) return;
        throw error;
      }
      if ((await this.io.omap(indexObject(d), "", 1)).entries.length > 0) {
        await this.ensureHints(d);
        return;
      }
    }
  }

  /** Removes the stripes of content `id` holding `size` bytes. */
  async removeData(id: string | undefined, size: number, chunk: number): Promise<void> {
    if (id === undefined) return;
    const stripes = Math.max(1, Math.ceil(size / chunk));
    await eachLimited(
      Array.from({ length: stripes }, (_, n) => n),
      32,
      async (n) => {
        await this.io.remove(dataObject(id, n)).catch((error: unknown) => {
          if (!isRados(error, Errno.ENOENT)) throw error;
        });
      },
    );
  }

  /** Writes `content` as stripes of a new data id. */
  private async writeData(content: Uint8Array): Promise<string> {
    const id = newDataId();
    const stripes = Math.max(1, Math.ceil(content.byteLength / this.chunkSize));
    await eachLimited(
      Array.from({ length: stripes }, (_, n) => n),
      8,
      (n) =>
        this.io.writeFull(
          dataObject(id, n),
          content.subarray(n * this.chunkSize, (n + 1) * this.chunkSize),
        ),
    );
    return id;
  }

  /** Publishes file entry `value` at `path` over whatever is there; removes what it replaced. */
  async replace(path: StoragePath, value: string, remove?: string[]): Promise<void> {
    for (;;) {
      const old = await this.readKey(parentPath(path), baseName(path));
      if (await this.publish(path, baseName(path), value, old ?? "", remove)) {
        const replaced = parseFile(old);
        const published = parseFile(value)!;
        if (replaced?.o !== undefined && replaced.o !== published.o) {
          await this.removeData(replaced.o, replaced.s, replaced.c ?? this.chunkSize);
        }
        return;
      }
    }
  }

  // --- the contract ---

  async getContent(path: StoragePath): Promise<Uint8Array> {
    return this.guard("getContent", path, async () => {
      // A concurrent overwrite may remove the stripes between reading the entry and the bytes.
      for (let attempt = 0; ; attempt += 1) {
        const file = await this.readFile(path);
        if (file === undefined) throw new PathNotFoundError(DRIVER_NAME, path);
        try {
          return await this.readWhole(file.entry);
        } catch (error) {
          if (attempt < 3 && isRados(error, Errno.ENOENT)) continue;
          throw error;
        }
      }
    });
  }

  private async readWhole(entry: FileEntry): Promise<Uint8Array> {
    if (entry.o === undefined) return Buffer.from(entry.d ?? "", "base64");
    const chunk = entry.c ?? this.chunkSize;
    const stripes = Math.ceil(entry.s / chunk);
    const parts = new Array<Buffer>(stripes);
    await eachLimited(
      Array.from({ length: stripes }, (_, n) => n),
      8,
      async (n) => {
        const length = Math.min(chunk, entry.s - n * chunk);
        parts[n] = await this.io.read(dataObject(entry.o!, n), 0, length);
        if (parts[n].length !== length) throw new RadosError("rados_aio_read", Errno.ENOENT);
      },
    );
    return Buffer.concat(parts, entry.s);
  }

  async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    await this.guard("putContent", path, async () => {
      await this.replace(path, await this.entryFor(content));
    });
  }

  async putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    return this.guard("putContentIfAbsent", path, async () => {
      const value = await this.entryFor(content);
      if (await this.publish(path, baseName(path), value, "")) return true;
      const entry = parseFile(value)!;
      await this.removeData(entry.o, entry.s, this.chunkSize);
      return false;
    });
  }

  /** The entry of new content: inline when small, else written as stripes first. */
  private async entryFor(content: Uint8Array): Promise<string> {
    const entry: FileEntry = { t: "f", s: content.byteLength, m: Date.now() };
    if (content.byteLength <= INLINE_MAX) {
      entry.d = Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString(
        "base64",
      );
    } else {
      entry.o = await this.writeData(content);
      entry.c = this.chunkSize;
    }
    return JSON.stringify(entry);
  }

  async reader(path: StoragePath, offset = 0, options?: CallOptions): Promise<Readable> {
    const file = await this.guard("reader", path, () => this.readFile(path));
    if (file === undefined) throw new PathNotFoundError(DRIVER_NAME, path);
    const { entry } = file;
    if (entry.o === undefined) {
      const content = Buffer.from(entry.d ?? "", "base64");
      return Readable.from(offset >= content.length ? [] : [content.subarray(offset)]);
    }
    return stripeReader(this, path, entry, offset, options?.signal);
  }

  async writer(path: StoragePath, append: boolean, options?: CallOptions): Promise<FileWriter> {
    return this.guard("writer", path, async () => {
      const dir = parentPath(path);
      const key = PENDING + baseName(path);
      const raw = await this.readKey(dir, key);
      const pending = raw === undefined ? undefined : (JSON.parse(raw) as PendingEntry);
      if (append) {
        if (pending === undefined) throw new PathNotFoundError(DRIVER_NAME, path);
        return new RadosWriter(this, path, pending.o, pending.c, pending.s, options?.signal);
      }
      if (pending !== undefined) {
        // Starting over: what an earlier writer closed there is discarded.
        await this.io
          .operate(indexObject(dir), { omapEqual: [[key, raw!]], omapRemove: [key] })
          .then(
            () => this.removeData(pending.o, pending.s, pending.c),
            (error: unknown) => {
              if (!isRados(error, Errno.ECANCELED)) throw error;
            },
          );
      }
      return new RadosWriter(this, path, newDataId(), this.chunkSize, 0, options?.signal);
    });
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    return this.guard("stat", path, async () => {
      if (path === "/") return { path, size: 0, modTime: new Date(0), isDir: true };
      const file = await this.readFile(path);
      if (file !== undefined) {
        return { path, size: file.entry.s, modTime: new Date(file.entry.m), isDir: false };
      }
      if (await this.hasVisible(path)) return { path, size: 0, modTime: new Date(0), isDir: true };
      throw new PathNotFoundError(DRIVER_NAME, path);
    });
  }

  async list(path: StoragePath, options?: CallOptions): Promise<StoragePath[]> {
    return this.guard("list", path, async () => {
      const children = await this.visibleChildren(path, await this.readIndex(path), options);
      if (children.length > 0 || path === "/") return children.map((child) => child.path);
      if ((await this.readFile(path)) !== undefined) return [];
      throw new PathNotFoundError(DRIVER_NAME, path);
    });
  }

  /** The visible children of `dir` given its index (hinted directories checked), sorted. */
  private async visibleChildren(
    dir: StoragePath,
    index: Map<string, string>,
    options?: CallOptions,
  ): Promise<FileInfo[]> {
    const children: FileInfo[] = [];
    const directories: string[] = [];
    for (const [key, raw] of index) {
      if (key.startsWith(PENDING)) continue;
      const entry = parseFile(raw);
      const path = joinPath(dir, key);
      if (entry !== undefined) {
        children.push({ path, size: entry.s, modTime: new Date(entry.m), isDir: false });
      } else directories.push(path);
    }
    await eachLimited(directories, READ_AHEAD, async (path) => {
      if (options?.signal?.aborted) throw new AbortedError(DRIVER_NAME, "list", dir);
      if (await this.hasVisible(path)) {
        children.push({ path, size: 0, modTime: new Date(0), isDir: true });
      }
    });
    return children.sort((a, b) => comparePaths(a.path, b.path));
  }

  async move(sourcePath: StoragePath, destPath: StoragePath, options?: CallOptions): Promise<void> {
    await this.guard("move", sourcePath, async () => {
      const source = await this.readFile(sourcePath);
      if (source === undefined) throw new PathNotFoundError(DRIVER_NAME, sourcePath);
      if (sourcePath === destPath) return;
      if (options?.signal?.aborted) throw new AbortedError(DRIVER_NAME, "move", sourcePath);
      await this.replace(destPath, source.raw);
      const dir = parentPath(sourcePath);
      await this.io
        .operate(indexObject(dir), {
          omapEqual: [[baseName(sourcePath), source.raw]],
          omapRemove: [baseName(sourcePath)],
        })
        .catch((error: unknown) => {
          // Replaced meanwhile: the newer content stays at the source.
          if (!isRados(error, Errno.ECANCELED)) throw error;
        });
      await this.prune(dir);
    });
  }

  async delete(path: StoragePath, options?: CallOptions): Promise<void> {
    await this.guard("delete", path, async () => {
      const file = await this.readFile(path);
      if (file !== undefined) {
        await this.deleteFile(path, file.raw, file.entry);
        return;
      }
      const index = await this.readIndex(path);
      if (index.size === 0) throw new PathNotFoundError(DRIVER_NAME, path);
      await this.deleteTree(path, index, options?.signal);
      await this.prune(parentPath(path));
    });
  }

  private async deleteFile(path: StoragePath, raw: string, entry: FileEntry): Promise<void> {
    const dir = parentPath(path);
    try {
      await this.io.operate(indexObject(dir), {
        omapEqual: [[baseName(path), raw]],
        omapRemove: [baseName(path)],
      });
    } catch (error) {
      // Replaced meanwhile: delete what is there now.
      if (!isRados(error, Errno.ECANCELED)) throw error;
      const now = await this.readFile(path);
      if (now === undefined) throw new PathNotFoundError(DRIVER_NAME, path);
      return this.deleteFile(path, now.raw, now.entry);
    }
    await this.removeData(entry.o, entry.s, entry.c ?? this.chunkSize);
    await this.prune(dir);
  }

  /** Removes directory `dir`'s subtree, deepest first; each file whole or gone. */
  private async deleteTree(
    dir: StoragePath,
    index: Map<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (signal?.aborted) throw new AbortedError(DRIVER_NAME, "delete", dir, signal.reason);
    const subdirectories = [...index].filter(
      ([key, raw]) => !key.startsWith(PENDING) && raw === DIRECTORY,
    );
    await eachLimited(subdirectories, READ_AHEAD, async ([key]) => {
      const child = joinPath(dir, key);
      await this.deleteTree(child, await this.readIndex(child), signal);
    });
    if (signal?.aborted) throw new AbortedError(DRIVER_NAME, "delete", dir, signal.reason);
    const keys = [...index.keys()];
    for (let start = 0; start < keys.length; start += PAGE) {
      await this.io.operate(indexObject(dir), { omapRemove: keys.slice(start, start + PAGE) });
    }
    await eachLimited([...index], 8, async ([key, raw]) => {
      if (key.startsWith(PENDING)) {
        const pending = JSON.parse(raw) as PendingEntry;
        await this.removeData(pending.o, pending.s, pending.c);
        return;
      }
      const entry = parseFile(raw);
      if (entry !== undefined) await this.removeData(entry.o, entry.s, entry.c ?? this.chunkSize);
    });
    const page = await this.io.omap(indexObject(dir), "", 1);
    if (page.entries.length === 0 && page.version > 0n) {
      await this.io
        .operate(indexObject(dir), { assertVersion: page.version, remove: true })
        .catch(() => undefined); // written meanwhile, or gone: either is fine
    }
  }

  async redirectURL(): Promise<string | null> {
    return null;
  }

  async walk(path: StoragePath, fn: WalkFn, options?: CallOptions): Promise<void> {
    const signal = options?.signal;
    const index = await this.guard("walk", path, () => this.readIndex(path));
    const children = await this.guard("walk", path, () =>
      this.visibleChildren(path, index, options),
    );
    if (children.length === 0 && path !== "/") {
      if ((await this.guard("walk", path, () => this.readFile(path))) !== undefined) return;
      throw new PathNotFoundError(DRIVER_NAME, path);
    }
    await this.walkChildren(path, children, fn, signal);
  }

  /**
   * Calls `fn` for `children` in order and descends into directories. The indexes of the next
   * READ_AHEAD subdirectories are read while earlier ones are walked, so a walk waits for about
   * one round trip per READ_AHEAD directories, not one per directory.
   */
  private async walkChildren(
    root: StoragePath,
    children: FileInfo[],
    fn: WalkFn,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const ahead = new Map<string, Promise<FileInfo[]>>();
    const directories = children.filter((child) => child.isDir);
    let queued = 0;
    const readAhead = () => {
      while (queued < directories.length && ahead.size < READ_AHEAD) {
        const dir = directories[queued++]!.path;
        const listing = this.guard("walk", dir, async () =>
          this.visibleChildren(dir, await this.readIndex(dir)),
        );
        listing.catch(() => undefined);
        ahead.set(dir, listing);
      }
    };
    for (const child of children) {
      if (signal?.aborted) throw new AbortedError(DRIVER_NAME, "walk", root, signal.reason);
      readAhead();
      const action = await fn(child);
      if (action === "stop") return true;
      if (!child.isDir) {
        if (action === "skip") return false;
        continue;
      }
      const listing = ahead.get(child.path)!;
      ahead.delete(child.path);
      if (action === "skip") continue;
      if (await this.walkChildren(root, await listing, fn, signal)) return true;
    }
    return false;
  }

  async close(): Promise<void> {
    this.io.close();
    this.cluster.shutdown();
  }
}

function connectError(parameters: RadosParameters, error: unknown): Error {
  if (error instanceof RadosError && error.call === "rados_conf_read_file") {
    const where =
      parameters.conffile === undefined
        ? "no Ceph configuration found ($CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf)"
        : `cannot read ${parameters.conffile} (${error.message})`;
    return new InvalidParameterError(DRIVER_NAME, "conffile", where);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new BackendError(
    DRIVER_NAME,
    `connect to the Ceph cluster as client.${parameters.username}`,
    undefined,
    { cause: error instanceof Error ? error : new Error(reason) },
  );
}

/** A stream of a striped file from `offset`, reading one stripe piece ahead. */
function stripeReader(
  driver: RadosDriver,
  path: StoragePath,
  entry: FileEntry,
  offset: number,
  signal: AbortSignal | undefined,
): Readable {
  const chunk = entry.c ?? driver.chunkSize;
  let position = offset;
  const fetch = (): Promise<Buffer> | null => {
    if (position >= entry.s) return null;
    const stripe = Math.floor(position / chunk);
    const within = position % chunk;
    const length = Math.min(chunk - within, entry.s - position, READ_PIECE);
    position += length;
    return driver.io.read(dataObject(entry.o!, stripe), within, length).then((data) => {
      if (data.length !== length) {
        throw new BackendError(DRIVER_NAME, "read", path, {
          cause: new Error(`stripe ${stripe} holds ${data.length} of ${length} bytes`),
        });
      }
      return data;
    });
  };
  let next = fetch();
  next?.catch(() => undefined);
  const stream = new Readable({
    highWaterMark: 0,
    read() {
      const current = next;
      if (current === null) {
        this.push(null);
        return;
      }
      next = fetch();
      next?.catch(() => undefined);
      current.then(
        (data) => this.push(data),
        (error: unknown) => this.destroy(driver.fail("read", path, error)),
      );
    },
  });
  if (signal !== undefined) {
    const abort = () =>
      stream.destroy(new AbortedError(DRIVER_NAME, "reader", path, signal.reason));
    if (signal.aborted) abort();
    else {
      signal.addEventListener("abort", abort, { once: true });
      stream.once("close", () => signal.removeEventListener("abort", abort));
    }
  }
  return stream;
}

/**
 * A writer: bytes gather in a buffer up to the end of the current stripe, which is then written
 * while the next buffer fills (two buffers of at most `chunk` bytes: memory bounded by the stripe
 * size). close() records the id and size under `~<name>` for any process to resume.
 */
class RadosWriter implements FileWriter {
  private readonly state: WriterState;
  /** Bytes in RADOS (flushed). */
  private stored: number;
  private buffer: Buffer | null = null;
  private spare: Buffer | null = null;
  private filled = 0;
  private flushing: Promise<void> | null = null;
  /** Set once a write to RADOS failed: later writes and commit reject with it. */
  private failed: Error | null = null;

  constructor(
    private readonly driver: RadosDriver,
    private readonly path: StoragePath,
    private readonly id: string,
    private readonly chunk: number,
    size: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.state = new WriterState(DRIVER_NAME, path);
    this.stored = size;
  }

  get size(): number {
    return this.stored + this.filled + (this.flushingBytes ?? 0);
  }

  private flushingBytes: number | null = null;

  private checkAborted(operation: string): void {
    if (this.signal?.aborted) {
      throw new AbortedError(DRIVER_NAME, operation, this.path, this.signal.reason);
    }
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.state.run(async () => {
      this.checkAborted("write");
      if (this.failed !== null) throw this.failed;
      let at = 0;
      while (at < chunk.byteLength) {
        const start = this.stored + (this.flushingBytes ?? 0);
        const capacity = this.chunk - (start % this.chunk);
        this.buffer ??= this.spare ?? Buffer.allocUnsafe(this.chunk);
        if (this.buffer === this.spare) this.spare = null;
        const take = Math.min(capacity - this.filled, chunk.byteLength - at);
        this.buffer.set(chunk.subarray(at, at + take), this.filled);
        this.filled += take;
        at += take;
        if (this.filled === capacity) await this.startFlush();
      }
    });
  }

  /** Waits for the previous flush, then starts writing the full buffer. */
  private async startFlush(): Promise<void> {
    await this.settle();
    const buffer = this.buffer!;
    const length = this.filled;
    const start = this.stored;
    this.buffer = null;
    this.filled = 0;
    this.flushingBytes = length;
    const object = dataObject(this.id, Math.floor(start / this.chunk));
    this.flushing = this.driver.io
      .write(object, buffer.subarray(0, length), start % this.chunk)
      .then(() => {
        this.stored += length;
        this.spare = buffer;
      })
      .finally(() => {
        this.flushingBytes = null;
      });
    this.flushing.catch(() => undefined);
  }

  /** Waits for the flush in flight; its failure fails the caller (the bytes are not stored). */
  private async settle(): Promise<void> {
    const flushing = this.flushing;
    if (flushing === null) return;
    this.flushing = null;
    try {
      await flushing;
    } catch (error) {
      // The bytes after the failed ones cannot be placed: drop them; `size` is what is stored.
      this.failed = this.driver.fail("write", this.path, error);
      this.buffer = null;
      this.filled = 0;
      throw this.failed;
    }
  }

  /** Writes everything buffered. */
  private async flushAll(): Promise<void> {
    if (this.failed !== null) return;
    if (this.filled > 0) await this.startFlush();
    await this.settle();
  }

  close(): Promise<void> {
    return this.state.run(async () => {
      // After a failed write, what reached RADOS is recorded (a retried close() does that).
      await this.flushAll();
      const pending: PendingEntry = { o: this.id, s: this.stored, c: this.chunk };
      await this.driver
        .publish(this.path, PENDING + baseName(this.path), JSON.stringify(pending))
        .catch((error: unknown) => {
          throw this.driver.fail("close", this.path, error);
        });
    }, "closed");
  }

  cancel(): Promise<void> {
    return this.state.run(async () => {
      await this.settle().catch(() => undefined);
      this.buffer = null;
      this.filled = 0;
      const dir = parentPath(this.path);
      try {
        await this.driver.io.operate(indexObject(dir), {
          omapRemove: [PENDING + baseName(this.path)],
        });
        await this.driver.removeData(this.id, this.stored, this.chunk);
        await this.driver.prune(dir);
      } catch (error) {
        if (!isRados(error, Errno.ENOENT)) throw this.driver.fail("cancel", this.path, error);
      }
    }, "cancelled");
  }

  commit(): Promise<void> {
    return this.state.run(async () => {
      this.checkAborted("commit");
      await this.flushAll();
      if (this.failed !== null) throw this.failed;
      this.checkAborted("commit");
      const entry: FileEntry = { t: "f", s: this.stored, m: Date.now(), o: this.id, c: this.chunk };
      await this.driver
        .replace(this.path, JSON.stringify(entry), [PENDING + baseName(this.path)])
        .catch((error: unknown) => {
          throw this.driver.fail("commit", this.path, error);
        });
    }, "committed");
  }
}
