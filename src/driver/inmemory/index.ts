// The inmemory driver: the whole contract over a Map, for tests and as the reference a driver
// author reads first. Nothing survives the process. Directories are implied by file paths, as on
// an object store. Content written by a FileWriter stays apart (invisible) until commit.

import { Readable } from "node:stream";
import {
  PathNotFoundError,
  type DriverParameters,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
} from "../driver.js";
import { registerDriver } from "../factory.js";
import { WriterState } from "../writer-state.js";
import { isWithin, joinPath } from "../paths.js";
import { walkByListing } from "../walk.js";

const NAME = "inmemory";

/** One stored file: its bytes as the chunks they were written in, so appends never copy. */
interface MemoryFile {
  chunks: Buffer[];
  size: number;
  modTime: Date;
}

function emptyFile(): MemoryFile {
  return { chunks: [], size: 0, modTime: new Date() };
}

/** The bytes of `file` from `offset` on, as slices of its chunks (no copy). */
function slicesFrom(file: MemoryFile, offset: number): Buffer[] {
  const slices: Buffer[] = [];
  let position = 0;
  for (const chunk of file.chunks) {
    const end = position + chunk.length;
    if (end > offset) slices.push(position >= offset ? chunk : chunk.subarray(offset - position));
    position = end;
  }
  return slices;
}

/** A driver that keeps everything in process memory. Takes no parameters. */
export class InMemoryDriver implements StorageDriver {
  readonly name = NAME;
  private readonly files = new Map<StoragePath, MemoryFile>();
  /** Content of writers that were closed and not yet committed, by path. */
  private readonly pending = new Map<StoragePath, MemoryFile>();

  async getContent(path: StoragePath): Promise<Uint8Array> {
    const file = this.file(path);
    return Buffer.concat(file.chunks, file.size);
  }

  async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    const copy = Buffer.from(content);
    this.files.set(path, { chunks: [copy], size: copy.length, modTime: new Date() });
  }

  async putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    if (this.files.has(path)) return false;
    await this.putContent(path, content);
    return true;
  }

  async reader(path: StoragePath, offset = 0): Promise<Readable> {
    const file = this.file(path);
    return Readable.from(slicesFrom(file, offset), { objectMode: false });
  }

  async writer(path: StoragePath, append: boolean): Promise<FileWriter> {
    let file: MemoryFile;
    if (append) {
      const resumed = this.pending.get(path);
      if (resumed === undefined) throw new PathNotFoundError(NAME, path);
      file = resumed;
    } else {
      file = emptyFile();
    }
    this.pending.delete(path);
    return new MemoryWriter(path, file, this);
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    const file = this.files.get(path);
    if (file !== undefined) return { path, size: file.size, modTime: file.modTime, isDir: false };
    let modTime: Date | undefined;
    for (const [key, child] of this.files) {
      if (
        key !== path &&
        isWithin(path, key) &&
        (modTime === undefined || child.modTime > modTime)
      ) {
        modTime = child.modTime;
      }
    }
    if (modTime === undefined && path !== "/") throw new PathNotFoundError(NAME, path);
    return { path, size: 0, modTime: modTime ?? new Date(0), isDir: true };
  }

  async list(path: StoragePath): Promise<StoragePath[]> {
    const prefix = path === "/" ? "/" : `${path}/`;
    const children = new Set<StoragePath>();
    for (const key of this.files.keys()) {
      if (!key.startsWith(prefix)) continue;
      const name = key.slice(prefix.length).split("/")[0]!;
      children.add(joinPath(path, name));
    }
    if (children.size === 0 && path !== "/") {
      if (this.files.has(path)) return [];
      throw new PathNotFoundError(NAME, path);
    }
    return [...children];
  }

  async move(sourcePath: StoragePath, destPath: StoragePath): Promise<void> {
    const file = this.files.get(sourcePath);
    if (file === undefined) throw new PathNotFoundError(NAME, sourcePath);
    if (sourcePath === destPath) return;
    this.deleteTree(destPath);
    this.files.set(destPath, { ...file, modTime: new Date() });
    this.files.delete(sourcePath);
  }

  async delete(path: StoragePath): Promise<void> {
    if (!this.deleteTree(path)) throw new PathNotFoundError(NAME, path);
  }

  async redirectURL(): Promise<string | null> {
    return null;
  }

  walk(path: StoragePath, fn: WalkFn): Promise<void> {
    return walkByListing(this, path, fn);
  }

  /** Called by MemoryWriter. */
  keepPending(path: StoragePath, file: MemoryFile): void {
    this.pending.set(path, file);
  }

  /** Called by MemoryWriter. */
  publish(path: StoragePath, file: MemoryFile): void {
    this.deleteTree(path);
    file.modTime = new Date();
    this.files.set(path, file);
  }

  private file(path: StoragePath): MemoryFile {
    const file = this.files.get(path);
    if (file === undefined) throw new PathNotFoundError(NAME, path);
    return file;
  }

  /** Removes `path` and everything below it, pending writers included; true if anything was. */
  private deleteTree(path: StoragePath): boolean {
    let found = false;
    for (const map of [this.files, this.pending]) {
      for (const key of [...map.keys()]) {
        if (isWithin(path, key)) {
          found ||= map === this.files;
          map.delete(key);
        }
      }
    }
    return found;
  }
}

class MemoryWriter implements FileWriter {
  private readonly state: WriterState;

  constructor(
    private readonly path: StoragePath,
    private readonly file: MemoryFile,
    private readonly driver: InMemoryDriver,
  ) {
    this.state = new WriterState(NAME, path);
  }

  get size(): number {
    return this.file.size;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.state.check();
    const copy = Buffer.from(chunk);
    this.file.chunks.push(copy);
    this.file.size += copy.length;
  }

  async close(): Promise<void> {
    this.state.end("closed");
    this.driver.keepPending(this.path, this.file);
  }

  async cancel(): Promise<void> {
    this.state.end("cancelled");
  }

  async commit(): Promise<void> {
    this.state.end("committed");
    this.driver.publish(this.path, this.file);
  }
}

/** Creates an inmemory driver; it takes no parameters. */
export function createInMemoryDriver(_parameters: DriverParameters = {}): InMemoryDriver {
  return new InMemoryDriver();
}

registerDriver(NAME, createInMemoryDriver, { known: [] });
