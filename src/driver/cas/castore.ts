// The local content-addressable store (seed 002's CAStore): blob files named by digest under
// `<root>/blobs/<algorithm>/<hex[0:2]>/<hex>`, bytes written to `<root>/tmp/` first and moved in by
// digest only after the digest was verified, so a blob in the store is always whole and right.
// Bounded by bytes: the least recently used blobs are removed past `capacity`. Use times are file
// modification times (touched on each use), so the order survives a restart: the store is scanned
// once at open. A reader still streaming a removed blob keeps its open file (POSIX unlink).

import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** `<algorithm>:<hex>` as the store accepts it. */
const DIGEST = /^(sha256):([a-f0-9]{64})$/;

/** The blob's content did not hash to the digest it was stored under. */
export class DigestMismatchError extends Error {
  readonly code = "ERR_CAS_DIGEST_MISMATCH";

  constructor(expected: string, actual: string) {
    super(`content hashes to ${actual}, not ${expected}`);
    this.name = "DigestMismatchError";
  }
}

interface Entry {
  size: number;
  used: number;
}

export interface CAStoreOptions {
  /** Bytes the store may hold; 0 is unbounded. */
  capacity: number;
}

export class CAStore {
  /** Known blobs by digest, in use order (a Map keeps insertion order: re-insert on use). */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  private constructor(
    readonly root: string,
    private readonly capacity: number,
  ) {}

  /** Opens the store at `root` (created if missing), scanning what an earlier process left. */
  static async open(root: string, options: CAStoreOptions): Promise<CAStore> {
    const store = new CAStore(root, options.capacity);
    await mkdir(join(root, "tmp"), { recursive: true });
    await rm(join(root, "tmp"), { recursive: true, force: true });
    await mkdir(join(root, "tmp"), { recursive: true });
    await store.scan();
    return store;
  }

  private async scan(): Promise<void> {
    const found: [string, Entry][] = [];
    const base = join(this.root, "blobs", "sha256");
    for (const prefix of await readdir(base).catch(() => [] as string[])) {
      for (const hex of await readdir(join(base, prefix)).catch(() => [] as string[])) {
        const info = await stat(join(base, prefix, hex)).catch(() => undefined);
        if (info?.isFile()) found.push([`sha256:${hex}`, { size: info.size, used: info.mtimeMs }]);
      }
    }
    found.sort((a, b) => a[1].used - b[1].used);
    for (const [digest, entry] of found) {
      this.entries.set(digest, entry);
      this.bytes += entry.size;
    }
  }

  /** The file of `digest` (whether or not it is stored). Throws for a digest it cannot hold. */
  file(digest: string): string {
    const match = DIGEST.exec(digest);
    if (match === null) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
    const hex = match[2]!;
    return join(this.root, "blobs", match[1]!, hex.slice(0, 2), hex);
  }

  /** The size of a stored blob, or undefined; counts as a use. */
  has(digest: string): number | undefined {
    const entry = this.entries.get(digest);
    if (entry === undefined) return undefined;
    this.touch(digest, entry);
    return entry.size;
  }

  /** Bytes held now. */
  get size(): number {
    return this.bytes;
  }

  private touch(digest: string, entry: Entry): void {
    entry.used = Date.now();
    this.entries.delete(digest);
    this.entries.set(digest, entry);
    const when = new Date(entry.used);
    utimes(this.file(digest), when, when).catch(() => {});
  }

  /** A stream of the stored blob from `offset`; undefined when it is not stored. */
  async reader(digest: string, offset = 0): Promise<Readable | undefined> {
    if (this.has(digest) === undefined) return undefined;
    const stream = createReadStream(this.file(digest), { start: offset });
    return new Promise((resolve) => {
      stream.once("open", () => resolve(stream));
      stream.once("error", () => resolve(undefined));
    });
  }

  /** A fresh temporary file in the store's scratch area (same filesystem, so a rename moves it). */
  tempFile(): string {
    return join(this.root, "tmp", randomUUID());
  }

  /**
   * Moves `file` (written by the caller) into the store as `digest` after hashing it: a mismatch
   * removes the file and rejects with DigestMismatchError. Returns the blob's size.
   */
  async commitFile(file: string, digest: string): Promise<number> {
    const destination = this.file(digest);
    try {
      const hash = createHash("sha256");
      await pipeline(createReadStream(file), hash);
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== digest) throw new DigestMismatchError(digest, actual);
      const { size } = await stat(file);
      await mkdir(join(destination, ".."), { recursive: true });
      await rename(file, destination);
      this.add(digest, size);
      return size;
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    }
  }

  /** Streams `source` into the store as `digest`, verified (see commitFile). */
  async put(digest: string, source: Readable): Promise<number> {
    this.file(digest);
    const temp = this.tempFile();
    try {
      await pipeline(source, createWriteStream(temp));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return this.commitFile(temp, digest);
  }

  private add(digest: string, size: number): void {
    const old = this.entries.get(digest);
    if (old !== undefined) this.bytes -= old.size;
    this.entries.delete(digest);
    this.entries.set(digest, { size, used: Date.now() });
    this.bytes += size;
    this.evict(digest);
  }

  /** Removes least recently used blobs (never `keep`, just added) until under capacity. */
  private evict(keep: string): void {
    if (this.capacity <= 0) return;
    for (const [digest, entry] of this.entries) {
      if (this.bytes <= this.capacity) return;
      if (digest === keep) continue;
      this.entries.delete(digest);
      this.bytes -= entry.size;
      rm(this.file(digest), { force: true }).catch(() => {});
    }
  }
}
