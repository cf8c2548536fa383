// The global blob store: content addressed, each blob stored once under
// blobs/<algorithm>/<hex[0:2]>/<hex>/data whatever repositories link it. And link files, the small
// `<algorithm>:<hex>` files repositories use to refer to blobs and manifests.

import type { Readable } from "node:stream";
import { DriverErrorCode, type StorageDriver } from "../driver/index.js";
import { LruCache } from "./cache.js";
import { tryParseDigest, type ParsedDigest } from "./digest.js";
import { paths } from "./paths.js";
import type { BlobInfo, Digest } from "./types.js";

/** True when `error` is a driver's PathNotFoundError. */
export function isPathNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === DriverErrorCode.PathNotFound;
}

/** Runs `operation`; a PathNotFoundError becomes `undefined`. */
export async function unlessNotFound<T>(operation: Promise<T>): Promise<T | undefined> {
  try {
    return await operation;
  } catch (error) {
    if (isPathNotFound(error)) return undefined;
    throw error;
  }
}

/** Deletes `path`; nothing there is fine. */
export async function deleteIfPresent(driver: StorageDriver, path: string): Promise<void> {
  await unlessNotFound(driver.delete(path));
}

/** Link files: `<algorithm>:<hex>`, no newline. */
export class LinkStore {
  constructor(private readonly driver: StorageDriver) {}

  /** The digest a link at `path` holds; undefined when there is no link (or it is not a digest). */
  async read(path: string): Promise<ParsedDigest | undefined> {
    const content = await unlessNotFound(this.driver.getContent(path));
    if (content === undefined) return undefined;
    // Tolerate a trailing newline from hand-made roots; distribution never writes one.
    return tryParseDigest(Buffer.from(content).toString("utf8").trim());
  }

  async write(path: string, digest: ParsedDigest): Promise<void> {
    await this.driver.putContent(path, Buffer.from(digest.digest, "utf8"));
  }
}

/** The global, content-addressed blob store. */
export class BlobStore {
  /** Blob sizes by digest: immutable while the blob exists; GC drops what it deletes. */
  private readonly sizes: LruCache<Digest, number>;

  constructor(
    private readonly driver: StorageDriver,
    cacheSize: number,
  ) {
    this.sizes = new LruCache(cacheSize);
  }

  /** The blob's size, or undefined when it is not stored. */
  async stat(digest: ParsedDigest): Promise<BlobInfo | undefined> {
    const cached = this.sizes.get(digest.digest);
    if (cached !== undefined) return { digest: digest.digest, size: cached };
    const info = await unlessNotFound(this.driver.stat(paths.blobData(digest)));
    if (info === undefined || info.isDir) return undefined;
    this.sizes.set(digest.digest, info.size);
    return { digest: digest.digest, size: info.size };
  }

  reader(digest: ParsedDigest, offset: number): Promise<Readable> {
    return this.driver.reader(paths.blobData(digest), offset);
  }

  async getContent(digest: ParsedDigest): Promise<Buffer | undefined> {
    const content = await unlessNotFound(this.driver.getContent(paths.blobData(digest)));
    return content === undefined
      ? undefined
      : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  }

  redirectURL(digest: ParsedDigest, method: "GET" | "HEAD"): Promise<string | null> {
    return this.driver.redirectURL(paths.blobData(digest), { method });
  }

  /** Stores small content (a manifest) under its digest, unless it is stored already. */
  async put(digest: ParsedDigest, content: Buffer): Promise<BlobInfo> {
    const existing = await this.stat(digest);
    if (existing !== undefined) return existing;
    await this.driver.putContent(paths.blobData(digest), content);
    this.sizes.set(digest.digest, content.length);
    return { digest: digest.digest, size: content.length };
  }

  /** Moves finished upload data into place as the blob `digest`. */
  async adopt(digest: ParsedDigest, sourcePath: string, size: number): Promise<void> {
    await this.driver.move(sourcePath, paths.blobData(digest));
    this.sizes.set(digest.digest, size);
  }

  /** Removes the blob (its whole directory). */
  async delete(digest: ParsedDigest): Promise<void> {
    this.sizes.delete(digest.digest);
    await deleteIfPresent(this.driver, paths.blob(digest));
  }

  /** Every stored blob's digest, by listing blobs/<algorithm>/<prefix>/<hex>. */
  async *enumerate(): AsyncGenerator<ParsedDigest> {
    const algorithms = (await unlessNotFound(this.driver.list(paths.blobsRoot()))) ?? [];
    for (const algorithmPath of algorithms.sort()) {
      const prefixes = (await unlessNotFound(this.driver.list(algorithmPath))) ?? [];
      for (const prefixPath of prefixes.sort()) {
        const blobs = (await unlessNotFound(this.driver.list(prefixPath))) ?? [];
        for (const blobPath of blobs.sort()) {
          const parts = blobPath.split("/");
          const digest = tryParseDigest(`${parts.at(-3)}:${parts.at(-1)}`);
          if (digest !== undefined) yield digest;
        }
      }
    }
  }
}
