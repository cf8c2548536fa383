// A repository's view of the blob store: a blob is visible in a repository only through its
// `_layers` link, as in distribution.

import type { Readable, Writable } from "node:stream";
import type { StorageContext } from "./context.js";
import { isPathNotFound } from "./blobstore.js";
import { parseDigest, tryParseDigest, type ParsedDigest } from "./digest.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { checkRepositoryName } from "./names.js";
import { paths } from "./paths.js";
import type { BlobInfo, Digest, RepositoryBlobs, StreamOptions, UploadSession } from "./types.js";
import { resumeUpload, startUpload } from "./upload.js";

function blobUnknown(repository: string, digest: Digest): RegistryError {
  return new RegistryError(
    RegistryErrorCode.BlobUnknown,
    `blob ${digest} is not in repository ${repository}`,
    { digest },
  );
}

export class LinkedBlobs implements RepositoryBlobs {
  constructor(
    private readonly context: StorageContext,
    private readonly repository: string,
  ) {}

  /** The blob if it is linked into `repository` and stored; undefined otherwise. */
  static async find(
    context: StorageContext,
    repository: string,
    digest: ParsedDigest,
  ): Promise<BlobInfo | undefined> {
    const link = await context.links.readKnown(paths.layerLink(repository, digest));
    if (link === undefined) return undefined;
    return context.blobs.stat(link);
  }

  /**
   * `stat`'s answer from this process's memory alone, without a promise: the link and the size
   * known to the descriptor cache, and the blob's protection refreshed (and its data found) within
   * delay/2, as `protect` requires before it answers without I/O. Undefined when any of that needs
   * storage, or the digest is invalid: then `stat` answers. Invalidated as the caches are: deletes
   * and the collector forget the link, the size and the protection.
   */
  statCached(digest: Digest): BlobInfo | undefined {
    const parsed = tryParseDigest(digest);
    if (parsed === undefined) return undefined;
    const { links, blobs, protection, options } = this.context;
    if (!options.readOnly && !protection.isRecent(parsed.digest)) return undefined;
    const link = links.known(paths.layerLink(this.repository, parsed));
    if (link === undefined) return undefined;
    const size = blobs.knownSize(link);
    return size === undefined ? undefined : { digest: link, size };
  }

  /**
   * The blob if linked and stored. A client that found a blob may push a manifest using it
   * without uploading it, so a found blob's protection from garbage collection is refreshed (and
   * its data checked at that moment), at most once per gc delay/2 in this process.
   */
  async stat(digest: Digest): Promise<BlobInfo> {
    const parsed = parseDigest(digest);
    const info = await LinkedBlobs.find(this.context, this.repository, parsed);
    if (info === undefined || !(await this.protect(parsed))) {
      throw blobUnknown(this.repository, digest);
    }
    return info;
  }

  /**
   * Refreshes the blob's protection and checks its data is stored; false (and the caches of it
   * dropped) when it is not. A read-only registry pushes nothing: nothing to protect.
   */
  private async protect(digest: ParsedDigest): Promise<boolean> {
    if (this.context.options.readOnly) return true;
    const { blobs, links, protection } = this.context;
    if (await protection.protect(digest, () => blobs.exists(digest))) return true;
    await links.forget(paths.layerLink(this.repository, digest));
    return false;
  }

  async reader(digest: Digest, offset = 0): Promise<Readable> {
    const info = await this.stat(digest);
    return this.context.blobs.reader(parseDigest(info.digest), offset);
  }

  async copyTo(
    digest: Digest,
    destination: Writable,
    offset = 0,
    length?: number,
    options?: StreamOptions,
  ): Promise<void> {
    const info = await this.stat(digest);
    await this.context.blobs.copyTo(parseDigest(info.digest), destination, offset, length, options);
  }

  async redirectURL(digest: Digest, method: "GET" | "HEAD" = "GET"): Promise<string | null> {
    const info = await this.stat(digest);
    return this.context.blobs.redirectURL(parseDigest(info.digest), method);
  }

  async delete(digest: Digest): Promise<void> {
    this.context.checkDeletable();
    const parsed = parseDigest(digest);
    const path = paths.layerLink(this.repository, parsed);
    const link = await this.context.links.readKnown(path);
    if (link === undefined) throw blobUnknown(this.repository, digest);
    try {
      await this.context.driver.delete(paths.layerLinkDirectory(this.repository, parsed));
    } catch (error) {
      // A concurrent DELETE of the same blob removed it first.
      if (isPathNotFound(error)) throw blobUnknown(this.repository, digest);
      throw error;
    } finally {
      await this.context.links.forget(path);
    }
  }

  async mount(from: string | undefined, digest: Digest): Promise<BlobInfo> {
    this.context.checkWritable();
    if (from !== undefined) checkRepositoryName(from);
    const parsed = parseDigest(digest);
    const info =
      from === undefined
        ? await this.context.blobs.stat(parsed)
        : await LinkedBlobs.find(this.context, from, parsed);
    const stored =
      info !== undefined &&
      (await this.context.protection.protect(parsed, () => this.context.blobs.exists(parsed)));
    if (!stored) {
      if (from !== undefined) throw blobUnknown(from, digest);
      throw new RegistryError(RegistryErrorCode.BlobUnknown, `blob ${digest} is not stored`, {
        digest,
      });
    }
    await this.context.links.writeKnown(paths.layerLink(this.repository, parsed), parsed);
    return info;
  }

  startUpload(): Promise<UploadSession> {
    return startUpload(this.context, this.repository);
  }

  resumeUpload(id: string): Promise<UploadSession> {
    return resumeUpload(this.context, this.repository, id);
  }
}
