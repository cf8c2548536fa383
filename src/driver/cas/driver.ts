// The CAS driver (seed 002, Kraken's storage driver): the registry's paths are parsed into what
// they mean and served from a local content-addressable store and a Transferer, instead of being
// stored as paths. Blobs come from the CAS, or through the transferer on first read (verified by
// digest before they enter the CAS); tags come from the transferer; links are answered from the
// digest in their path. Uploads and Berth's own state (paths outside the registry's tree) live in
// a local scratch area, an ordinary filesystem driver.
//
// Read-write (`constructor: rw`): a finished upload moves into the CAS by digest and goes out
// through the transferer; manifest revisions and tags are sent to it. Read-only (`ro`, the
// default): nothing is written to the registry's tree. Not supported (UnsupportedMethodError, as
// Kraken's driver answers delete and walk): deleting or walking the registry's tree, listing it
// (catalog, tags list), and writers on anything but uploads.

import { readFile, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import {
  BackendError,
  PathNotFoundError,
  UnsupportedMethodError,
  type CallOptions,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
  type WriterOptions,
} from "../driver.js";
import { DigestMismatchError, type CAStore } from "./castore.js";
import { parseLayoutPath, type LayoutPath } from "./layout.js";
import { TransferNotFoundError, type TransferHint, type Transferer } from "./transferer.js";

export const CAS_DRIVER_NAME = "cas";

/** How many digest → repository hints are kept (for transferers that need a repository). */
const HINTS = 10_000;

export interface CasDriverOptions {
  cas: CAStore;
  /** The scratch area: uploads and Berth's own state. */
  local: StorageDriver;
  transferer: Transferer;
  readWrite: boolean;
}

export class CasDriver implements StorageDriver {
  readonly name = CAS_DRIVER_NAME;
  private readonly cas: CAStore;
  private readonly local: StorageDriver;
  private readonly transferer: Transferer;
  private readonly readWrite: boolean;
  private readonly hints = new Map<string, TransferHint>();
  /** Downloads in flight by digest: concurrent readers of one blob share one transfer. */
  private readonly downloads = new Map<string, Promise<void>>();

  constructor(options: CasDriverOptions) {
    this.cas = options.cas;
    this.local = options.local;
    this.transferer = options.transferer;
    this.readWrite = options.readWrite;
  }

  async getContent(path: StoragePath): Promise<Uint8Array> {
    const parsed = this.parse(path);
    switch (parsed.kind) {
      case "local":
      case "upload":
        return this.local.getContent(path);
      case "blob":
        await this.ensure(parsed.digest, path);
        return readFile(this.cas.file(parsed.digest));
      case "layerLink":
      case "revisionLink":
        await this.checkLink(parsed.repository, parsed.digest, parsed.kind, path);
        return Buffer.from(parsed.digest);
      case "tagIndexLink":
        return Buffer.from(parsed.digest);
      case "tagLink":
        return Buffer.from(await this.tag(parsed.repository, parsed.tag, path));
      case "referrers":
        throw new PathNotFoundError(this.name, path);
      default:
        throw this.unsupported("getContent", path);
    }
  }

  async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    const parsed = this.parse(path);
    if (parsed.kind === "local" || parsed.kind === "upload") {
      return this.local.putContent(path, content);
    }
    if (!this.readWrite) throw this.unsupported("putContent (read-only)", path);
    switch (parsed.kind) {
      case "blob":
        await this.transfer("putContent", path, () =>
          this.cas.put(parsed.digest, Readable.from([Buffer.from(content)])),
        );
        return;
      case "revisionLink":
        return this.send(parsed.digest, path, { repository: parsed.repository, manifest: true });
      case "tagLink": {
        const digest = Buffer.from(content).toString("utf8");
        return this.transfer("putContent", path, () =>
          this.transferer.putTag(parsed.repository, parsed.tag, digest),
        );
      }
      case "layerLink":
        // The blob goes out when the origin's repository lacks it (the registry skips an upload
        // of a blob it has, and links it; that blob may be in another repository at the origin).
        return this.sendUnlessPresent(parsed.digest, path, parsed.repository);
      case "tagIndexLink":
      case "referrers":
        // Implied by the tag: the transferer's side keeps its own.
        return;
      default:
        throw this.unsupported("putContent", path);
    }
  }

  async putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    if (this.parse(path).kind !== "local" || this.local.putContentIfAbsent === undefined) {
      throw this.unsupported("putContentIfAbsent", path);
    }
    return this.local.putContentIfAbsent(path, content);
  }

  async reader(path: StoragePath, offset = 0, options?: CallOptions): Promise<Readable> {
    const parsed = this.parse(path);
    if (parsed.kind === "local" || parsed.kind === "upload") {
      return this.local.reader(path, offset, options);
    }
    if (parsed.kind !== "blob") throw this.unsupported("reader", path);
    await this.ensure(parsed.digest, path);
    const stream = await this.cas.reader(parsed.digest, offset);
    if (stream === undefined) throw new PathNotFoundError(this.name, path);
    return stream;
  }

  async writer(path: StoragePath, append: boolean, options?: WriterOptions): Promise<FileWriter> {
    const parsed = this.parse(path);
    // Blobs are not the local driver's: its writers keep their bytes at their own paths.
    const local = options?.stageNear === undefined ? options : { ...options, stageNear: undefined };
    if (parsed.kind === "local") return this.local.writer(path, append, local);
    if (parsed.kind === "upload" && this.readWrite) {
      return this.local.writer(path, append, local);
    }
    throw this.unsupported("writer", path);
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    if (path === "/") return this.local.stat(path);
    const parsed = this.parse(path);
    const file = (size: number): FileInfo => ({ path, size, modTime: new Date(), isDir: false });
    switch (parsed.kind) {
      case "local":
      case "upload":
        return this.local.stat(path);
      case "blob":
        return file(await this.blobSize(parsed.digest, path));
      case "blobDirectory":
        if (parsed.digest !== undefined) await this.blobSize(parsed.digest, path);
        return { path, size: 0, modTime: new Date(), isDir: true };
      case "layerLink":
      case "revisionLink":
        await this.checkLink(parsed.repository, parsed.digest, parsed.kind, path);
        return file(parsed.digest.length);
      case "tagIndexLink":
        return file(parsed.digest.length);
      case "tagLink":
        return file((await this.tag(parsed.repository, parsed.tag, path)).length);
      case "referrers":
        throw new PathNotFoundError(this.name, path);
      default:
        throw this.unsupported("stat", path);
    }
  }

  async list(path: StoragePath, options?: CallOptions): Promise<StoragePath[]> {
    if (path === "/") return this.local.list(path, options);
    const parsed = this.parse(path);
    if (parsed.kind === "local" || parsed.kind === "upload") return this.local.list(path, options);
    throw this.unsupported("list", path);
  }

  async move(sourcePath: StoragePath, destPath: StoragePath, options?: CallOptions): Promise<void> {
    const source = this.parse(sourcePath);
    const destination = this.parse(destPath);
    if (source.kind === "local" && destination.kind === "local") {
      return this.local.move(sourcePath, destPath, options);
    }
    if (source.kind === "upload" && destination.kind === "upload" && this.readWrite) {
      return this.local.move(sourcePath, destPath, options);
    }
    if (source.kind !== "upload" || destination.kind !== "blob" || !this.readWrite) {
      throw this.unsupported("move", `${sourcePath} to ${destPath}`);
    }
    // A finished upload: into the CAS by its digest (verified). It goes out through the
    // transferer when the registry links it into the repository (putContent of the layer link).
    const content = await this.local.reader(sourcePath, 0, options);
    await this.transfer("move", destPath, () => this.cas.put(destination.digest, content));
    await this.local.delete(sourcePath);
  }

  async delete(path: StoragePath, options?: CallOptions): Promise<void> {
    const parsed = this.parse(path);
    if (parsed.kind === "local" || parsed.kind === "upload")
      return this.local.delete(path, options);
    throw this.unsupported("delete", path);
  }

  async redirectURL(): Promise<string | null> {
    return null;
  }

  async walk(path: StoragePath, fn: WalkFn, options?: CallOptions): Promise<void> {
    if (path === "/" || this.parse(path).kind === "local")
      return this.local.walk(path, fn, options);
    throw this.unsupported("walk", path);
  }

  async close(): Promise<void> {
    await this.local.close?.();
  }

  /** Parses `path`, remembering which repository a digest was reached through. */
  private parse(path: StoragePath): LayoutPath {
    const parsed = parseLayoutPath(path);
    if (parsed.kind === "layerLink" || parsed.kind === "revisionLink") {
      this.hints.delete(parsed.digest);
      const hint: TransferHint = { repository: parsed.repository };
      if (parsed.kind === "revisionLink") hint.manifest = true;
      this.hints.set(parsed.digest, hint);
      if (this.hints.size > HINTS) this.hints.delete(this.hints.keys().next().value!);
    }
    return parsed;
  }

  private hint(digest: string): TransferHint {
    return { ...this.hints.get(digest) };
  }

  private unsupported(method: string, path: string): UnsupportedMethodError {
    return new UnsupportedMethodError(this.name, method, path);
  }

  /** Runs a transferer call, as the driver's errors: not found there is not found here. */
  private async transfer<T>(operation: string, path: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof TransferNotFoundError) throw new PathNotFoundError(this.name, path);
      if (error instanceof DigestMismatchError)
        throw new BackendError(this.name, operation, path, { cause: error });
      throw error instanceof Error && "driverName" in error
        ? error
        : new BackendError(this.name, operation, path, { cause: error });
    }
  }

  /**
   * A read-only driver answers links from their path (a missing blob is found missing when read).
   * A read-write one asks whether the repository has the blob, so that a client pushing to it
   * uploads what the origin's repository lacks.
   */
  private async checkLink(
    repository: string,
    digest: string,
    kind: "layerLink" | "revisionLink",
    path: string,
  ): Promise<void> {
    if (!this.readWrite) return;
    const hint = { repository, manifest: kind === "revisionLink", inRepository: true };
    await this.transfer("stat", path, () => this.transferer.stat(digest, hint));
  }

  private async tag(repository: string, tag: string, path: string): Promise<string> {
    return this.transfer("getTag", path, () => this.transferer.getTag(repository, tag));
  }

  private async blobSize(digest: string, path: string): Promise<number> {
    const stored = this.cas.has(digest);
    if (stored !== undefined) return stored;
    const { size } = await this.transfer("stat", path, () =>
      this.transferer.stat(digest, this.hint(digest)),
    );
    return size;
  }

  private async sendUnlessPresent(digest: string, path: string, repository: string): Promise<void> {
    try {
      await this.checkLink(repository, digest, "layerLink", path);
      return;
    } catch (error) {
      if (!(error instanceof PathNotFoundError)) throw error;
    }
    await this.send(digest, path, { repository });
  }

  /** Sends a blob of the CAS out through the transferer. */
  private async send(digest: string, path: string, hint: TransferHint): Promise<void> {
    // Content the transferer's side already had (so the client never sent it) is fetched first.
    await this.ensure(digest, path);
    await this.transfer("upload", path, async () => {
      const content = await this.cas.reader(digest);
      if (content === undefined) throw new TransferNotFoundError(digest);
      await this.transferer.upload(digest, content, hint);
    });
  }

  /** Makes sure the blob is in the CAS: downloaded once (shared by concurrent callers), verified. */
  private async ensure(digest: string, path: string): Promise<void> {
    if (this.cas.has(digest) !== undefined) return;
    let download = this.downloads.get(digest);
    if (download === undefined) {
      download = this.download(digest).finally(() => this.downloads.delete(digest));
      this.downloads.set(digest, download);
    }
    await this.transfer("download", path, () => download);
  }

  private async download(digest: string): Promise<void> {
    const hint = this.hint(digest);
    if (this.transferer.downloadToFile !== undefined) {
      const temp = this.cas.tempFile();
      try {
        await this.transferer.downloadToFile(digest, temp, hint);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      await this.cas.commitFile(temp, digest);
      return;
    }
    await this.cas.put(digest, await this.transferer.download(digest, hint));
  }
}
