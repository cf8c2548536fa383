// The global blob store: content addressed, each blob stored once under
// blobs/<algorithm>/<hex[0:2]>/<hex>/data whatever repositories link it. And link files, the small
// `<algorithm>:<hex>` files repositories use to refer to blobs and manifests.

import type { Readable, Writable } from "node:stream";
import {
  DriverErrorCode,
  copyContent,
  type FileWriter,
  type StorageDriver,
} from "../driver/index.js";
import { countLookup, type CacheStats } from "./cache.js";
import type { BlobDescriptorCache } from "./descriptor-cache.js";
import { tryParseDigest, type ParsedDigest } from "./digest.js";
import { parseBlobPath, parseDigestPath, paths } from "./paths.js";
import type { BlobInfo, Digest, StreamOptions } from "./types.js";

/** A writer that can publish at another path than its own (FileWriter's optional commitTo). */
export type PublishingWriter = FileWriter & Required<Pick<FileWriter, "commitTo">>;

/** True when `writer` offers commitTo. */
export function canCommitTo(writer: FileWriter): writer is PublishingWriter {
  return writer.commitTo !== undefined;
}

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

/**
 * The digests named `<algorithm>/<hex>` below `directory` (layer links, revisions, a subject's
 * referrers), in path order; none when it is absent.
 */
export async function digestsBelow(
  driver: StorageDriver,
  directory: string,
): Promise<ParsedDigest[]> {
  const digests: ParsedDigest[] = [];
  const algorithms = (await unlessNotFound(driver.list(directory))) ?? [];
  for (const algorithmPath of algorithms.sort()) {
    const entries = (await unlessNotFound(driver.list(algorithmPath))) ?? [];
    for (const entry of entries.sort()) {
      const digest = parseDigestPath(entry);
      if (digest !== undefined) digests.push(digest);
    }
  }
  return digests;
}

/**
 * Link files: `<algorithm>:<hex>`, no newline.
 *
 * A repository's `_layers` links and manifest revision links never change content once written
 * (the digest is in their path); only a delete removes them. So the links of that kind known to
 * exist are remembered in the blob descriptor cache (`readKnown`, `writeKnown`), and deletes drop
 * them (`forget`). Tag links are mutable and always read through (`read`). How stale the cache
 * may be when another replica deletes is descriptor-cache.ts's business.
 */
export class LinkStore {
  /**
   * Counts `forget` calls: a read that started before one may have seen the link just deleted, so
   * it does not remember what it read.
   */
  private forgets = 0;

  constructor(
    private readonly driver: StorageDriver,
    private readonly cache: BlobDescriptorCache,
    private readonly stats?: CacheStats,
  ) {}

  /** The digest a link at `path` holds; undefined when there is no link (or it is not a digest). */
  async read(path: string): Promise<ParsedDigest | undefined> {
    const content = await unlessNotFound(this.driver.getContent(path));
    if (content === undefined) return undefined;
    // Tolerate a trailing newline from hand-made roots; distribution never writes one.
    // A view of the bytes, not a copy (a tag read on every manifest GET by tag).
    const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    return tryParseDigest(bytes.toString("utf8").trim());
  }

  /** `read` for a link only a delete can change (a layer or revision link): remembered if found. */
  async readKnown(path: string): Promise<ParsedDigest | undefined> {
    const cached = tryParseDigest(await this.cache.link(path));
    countLookup(this.stats, cached !== undefined);
    if (cached !== undefined) return cached;
    const forgets = this.forgets;
    const digest = await this.read(path);
    if (digest !== undefined && forgets === this.forgets) {
      await this.cache.setLink(path, digest.digest);
    }
    return digest;
  }

  /**
   * `readKnown`'s answer when the descriptor cache holds it in this process, without a promise
   * (the digest as `readKnown` or `writeKnown` remembered it, valid); undefined when it does not,
   * and then `readKnown` asks (and counts the request).
   */
  known(path: string): Digest | undefined {
    const digest = this.cache.knownLink?.(path);
    if (digest !== undefined) countLookup(this.stats, true);
    return digest;
  }

  async write(path: string, digest: ParsedDigest): Promise<void> {
    await this.driver.putContent(path, Buffer.from(digest.digest, "utf8"));
  }

  /** `write` for a link only a delete can change, remembered as existing once written. */
  async writeKnown(path: string, digest: ParsedDigest): Promise<void> {
    const forgets = this.forgets;
    await this.write(path, digest);
    if (forgets === this.forgets) await this.cache.setLink(path, digest.digest);
  }

  /** Drops a link about to be deleted (or just deleted) from what is known to exist. */
  async forget(path: string): Promise<void> {
    this.forgets++;
    await this.cache.forgetLink(path);
  }

  /** `forget` for every link under the directory `directory` (a whole subtree being deleted). */
  async forgetUnder(directory: string): Promise<void> {
    this.forgets++;
    const links: string[] = [];
    await unlessNotFound(
      this.driver.walk(directory, (info) => {
        if (!info.isDir && info.path.endsWith("/link")) links.push(info.path);
      }),
    );
    for (const path of links) await this.forget(path);
  }
}

/** The global, content-addressed blob store. */
export class BlobStore {
  /** Blob sizes by digest (in the blob descriptor cache): immutable while the blob exists. */
  constructor(
    private readonly driver: StorageDriver,
    private readonly sizes: BlobDescriptorCache,
    private readonly stats?: CacheStats,
  ) {}

  /** The blob's size, or undefined when it is not stored. */
  async stat(digest: ParsedDigest): Promise<BlobInfo | undefined> {
    const cached = await this.sizes.size(digest.digest);
    countLookup(this.stats, cached !== undefined);
    if (cached !== undefined) return { digest: digest.digest, size: cached };
    const info = await unlessNotFound(this.driver.stat(paths.blobData(digest)));
    if (info === undefined || info.isDir) return undefined;
    await this.sizes.setSize(digest.digest, info.size);
    return { digest: digest.digest, size: info.size };
  }

  /**
   * The blob's size when the descriptor cache holds it in this process, without a promise;
   * undefined when it does not, and then `stat` asks (and counts the request).
   */
  knownSize(digest: Digest): number | undefined {
    const size = this.sizes.knownSize?.(digest);
    if (size !== undefined) countLookup(this.stats, true);
    return size;
  }

  /** True when the blob's data is stored, asking the driver (no cache). */
  async exists(digest: ParsedDigest): Promise<boolean> {
    const info = await unlessNotFound(this.driver.stat(paths.blobData(digest)));
    if (info === undefined || info.isDir) {
      await this.sizes.forgetSize(digest.digest);
      return false;
    }
    await this.sizes.setSize(digest.digest, info.size);
    return true;
  }

  /** Forgets the blob's size (it is being removed, or another replica removed it). */
  async forget(digest: ParsedDigest): Promise<void> {
    await this.sizes.forgetSize(digest.digest);
  }

  reader(digest: ParsedDigest, offset: number): Promise<Readable> {
    return this.driver.reader(paths.blobData(digest), offset);
  }

  copyTo(
    digest: ParsedDigest,
    destination: Writable,
    offset: number,
    length: number | undefined,
    options?: StreamOptions,
  ): Promise<void> {
    return copyContent(this.driver, paths.blobData(digest), destination, offset, length, options);
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
    await this.sizes.setSize(digest.digest, content.length);
    return { digest: digest.digest, size: content.length };
  }

  /**
   * Publishes an upload's writer as the blob `digest`, straight into place (see FileWriter's
   * commitTo); its content was checked against the digest before.
   */
  async commit(digest: ParsedDigest, writer: PublishingWriter): Promise<void> {
    const size = writer.size;
    await writer.commitTo(paths.blobData(digest));
    await this.sizes.setSize(digest.digest, size);
  }

  /**
   * commit unless the blob is stored already: then the writer is cancelled and the stored blob
   * stays (false). With the writer's commitToIfAbsent, the driver decides it in the publish (a
   * filesystem's mkdir of a new blob's directory); otherwise a lookup comes first.
   */
  async commitIfAbsent(digest: ParsedDigest, writer: PublishingWriter): Promise<boolean> {
    if (writer.commitToIfAbsent === undefined) {
      if (await this.exists(digest)) {
        await writer.cancel();
        return false;
      }
      await this.commit(digest, writer);
      return true;
    }
    const size = writer.size;
    if (!(await writer.commitToIfAbsent(paths.blobData(digest)))) {
      // The stored blob's size, for the descriptor cache; the upload is done either way.
      await this.exists(digest).catch(() => false);
      return false;
    }
    await this.sizes.setSize(digest.digest, size);
    return true;
  }

  /** Moves finished upload data into place as the blob `digest`. */
  async adopt(digest: ParsedDigest, sourcePath: string, size: number): Promise<void> {
    await this.driver.move(sourcePath, paths.blobData(digest));
    await this.sizes.setSize(digest.digest, size);
  }

  /** Removes the blob (its whole directory). */
  async delete(digest: ParsedDigest): Promise<void> {
    await this.sizes.forgetSize(digest.digest);
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
          const digest = parseBlobPath(blobPath);
          if (digest !== undefined) yield digest;
        }
      }
    }
  }
}
