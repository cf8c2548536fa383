// Over 400 lines: the whole driver contract on one Blob service client, redirects included.
// The azure driver: the storage driver contract on Azure Blob Storage, one block blob per path in
// one container. Paths map to blob names below `rootdirectory`; directories are name prefixes,
// as on any object store. Writers stage blocks on the target blob and commit them (./writer.ts).
// See docs/driver-azure.md for parameters, permissions, redirects and atomicity.

import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import type { TokenCredential } from "@azure/identity";
import {
  BlobSASPermissions,
  BlobServiceClient,
  newPipeline,
  SASProtocol,
  StorageSharedKeyCredential,
  type BlobItem,
  type BlockBlobClient,
  type ContainerClient,
  type UserDelegationKey,
} from "@azure/storage-blob";
import {
  BackendError,
  InvalidParameterError,
  type BackendRequestObserver,
  PathNotFoundError,
  type CallOptions,
  type FileInfo,
  type FileWriter,
  type RedirectOptions,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
  type WriterOptions,
} from "../driver.js";
import { walkFlatListing } from "../walk.js";
import { serviceErrorCode, serviceStatus, translateError } from "./errors.js";
import { DRIVER_NAME, type AzureDriverOptions } from "./parameters.js";
import { countingPolicy } from "./requests.js";
import { resumeWriter, startWriter, type DriverObjects, type WriterTarget } from "./writer.js";

const DEFAULT_REDIRECT_SECONDS = 20 * 60;
/** A user delegation key is requested for this long and reused until close to its expiry. */
const DELEGATION_KEY_SECONDS = 24 * 60 * 60;
/** The longest a user delegation key may live (less a margin for clock skew). */
const MAX_DELEGATION_SECONDS = 7 * 24 * 60 * 60 - 10 * 60;
/** After the service refuses a user delegation key, redirects are off for this long. */
const DELEGATION_RETRY_SECONDS = 5 * 60;
/** Deletes of one directory's blobs in flight at once. */
const DELETE_CONCURRENCY = 16;

/** Runs `task` for each item with at most `limit` running at once. */
async function forEachLimited<T>(
  items: T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The contract on one Azure Blob Storage container. */
export class AzureDriver implements StorageDriver {
  readonly name = DRIVER_NAME;
  private readonly service: BlobServiceClient;
  private readonly container: ContainerClient;
  private readonly sharedKey: StorageSharedKeyCredential | undefined;
  private delegationKey: Promise<UserDelegationKey> | undefined;
  private delegationKeyExpiry = 0;
  /** Until when to stop asking for a delegation key after the service refused one. */
  private delegationDeniedUntil = 0;
  onBackendRequest: BackendRequestObserver | undefined;

  /**
   * `identity` authenticates when `options` has no account key (see `createAzureDriver`, which
   * passes @azure/identity's DefaultAzureCredential).
   */
  constructor(
    private readonly options: AzureDriverOptions,
    identity?: TokenCredential,
  ) {
    this.sharedKey =
      options.accountKey === undefined
        ? undefined
        : new StorageSharedKeyCredential(options.accountName, options.accountKey);
    const credential = this.sharedKey ?? identity;
    if (credential === undefined) {
      throw new InvalidParameterError(
        DRIVER_NAME,
        "accountkey",
        "is required without an identity credential",
      );
    }
    const pipeline = newPipeline(credential, { userAgentOptions: { userAgentPrefix: "berth" } });
    pipeline.factories.push(countingPolicy((operation) => this.onBackendRequest?.(operation)));
    this.service = new BlobServiceClient(options.serviceUrl, pipeline);
    this.container = this.service.getContainerClient(options.container);
  }

  async getContent(path: StoragePath): Promise<Uint8Array> {
    try {
      const response = await this.blob(path).download(0);
      return await buffer(response.readableStreamBody!);
    } catch (error) {
      throw translateError(error, "getContent", path);
    }
  }

  async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    const blob = this.blob(path);
    // One Put Blob request: readers see the old or the new blob, never a mix.
    const put = () => this.write(() => blob.upload(content, content.byteLength));
    try {
      await put();
    } catch (error) {
      if (serviceErrorCode(error) !== "InvalidBlobType")
        throw translateError(error, "putContent", path);
      // An append blob (as older distribution releases wrote) cannot be overwritten by Put Blob.
      try {
        await blob.deleteIfExists();
        await put();
      } catch (retryError) {
        throw translateError(retryError, "putContent", path);
      }
    }
  }

  /** Put Blob with `If-None-Match: *`: the service refuses (409 BlobAlreadyExists) when it exists. */
  async putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    const blob = this.blob(path);
    try {
      await this.write(() =>
        blob.upload(content, content.byteLength, { conditions: { ifNoneMatch: "*" } }),
      );
      return true;
    } catch (error) {
      const code = serviceErrorCode(error);
      if (code === "BlobAlreadyExists" || code === "ConditionNotMet") return false;
      throw translateError(error, "putContentIfAbsent", path);
    }
  }

  async reader(path: StoragePath, offset = 0, options?: CallOptions): Promise<Readable> {
    try {
      // The SDK resumes an interrupted body with ranged requests on the same ETag.
      const response = await this.blob(path).download(offset, undefined, {
        maxRetryRequests: 5,
        abortSignal: options?.signal,
      });
      return response.readableStreamBody as Readable;
    } catch (error) {
      // 416: the blob exists and `offset` is at or past its end.
      if (serviceStatus(error) === 416) return Readable.from([]);
      throw translateError(error, "reader", path);
    }
  }

  async writer(path: StoragePath, append: boolean, options?: WriterOptions): Promise<FileWriter> {
    const target: WriterTarget = {
      blob: this.blob(path),
      path,
      write: (request) => this.write(request),
      signal: options?.signal,
      objects: this.objects,
    };
    return append
      ? resumeWriter(target, this.options.blockSize, options?.newIfMissing)
      : startWriter(target, this.options.blockSize);
  }

  /** What a writer's commitTo publishes with. */
  private readonly objects: DriverObjects = {
    put: (path, content) => this.putContent(path, content),
    putIfAbsent: (path, content) => this.putContentIfAbsent(path, content),
    exists: (path) => this.isFile(path, "commitToIfAbsent"),
    move: (source, destination) => this.move(source, destination),
  };

  /**
   * PathNotFoundError naming the container when it does not exist (for a garbage collection,
   * which must neither take a misspelt container for an empty registry nor create it).
   */
  async requireContainer(): Promise<void> {
    let exists: boolean;
    try {
      exists = await this.container.exists();
    } catch (error) {
      throw translateError(error, "exists", `container ${this.container.containerName}`);
    }
    if (!exists) {
      throw new PathNotFoundError(DRIVER_NAME, `container ${this.container.containerName}`);
    }
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    if (path !== "/") {
      try {
        const properties = await this.blob(path).getProperties();
        return {
          path,
          size: properties.contentLength ?? 0,
          modTime: properties.lastModified ?? new Date(0),
          isDir: false,
        };
      } catch (error) {
        if (serviceStatus(error) !== 404) throw translateError(error, "stat", path);
      }
    }
    let first: BlobItem | undefined;
    try {
      const page = await this.container
        .listBlobsFlat({ prefix: this.prefixOf(path) })
        .byPage({ maxPageSize: 1 })
        .next();
      first = page.done ? undefined : page.value.segment.blobItems[0];
    } catch (error) {
      if (serviceStatus(error) !== 404 || path !== "/") throw translateError(error, "stat", path);
    }
    if (first === undefined && path !== "/") throw new PathNotFoundError(DRIVER_NAME, path);
    return { path, size: 0, modTime: first?.properties.lastModified ?? new Date(0), isDir: true };
  }

  async list(path: StoragePath, options?: CallOptions): Promise<StoragePath[]> {
    const children: StoragePath[] = [];
    try {
      for await (const item of this.container.listBlobsByHierarchy("/", {
        prefix: this.prefixOf(path),
        abortSignal: options?.signal,
      })) {
        const name = item.kind === "prefix" ? item.name.replace(/\/$/, "") : item.name;
        children.push(this.pathOf(name));
      }
    } catch (error) {
      if (serviceStatus(error) !== 404 || path !== "/") throw translateError(error, "list", path);
    }
    if (children.length === 0 && path !== "/" && !(await this.isFile(path, "list"))) {
      throw new PathNotFoundError(DRIVER_NAME, path);
    }
    return children;
  }

  async move(sourcePath: StoragePath, destPath: StoragePath): Promise<void> {
    const source = this.blob(sourcePath);
    if (sourcePath === destPath) {
      if (!(await this.isFile(sourcePath, "move")))
        throw new PathNotFoundError(DRIVER_NAME, sourcePath);
      return;
    }
    const dest = this.blob(destPath);
    try {
      // A server-side copy within the account, authorized by this client's own credential. It
      // takes no signal: an abandoned copy would still land after the caller heard "aborted".
      const poller = await this.write(() =>
        dest.beginCopyFromURL(source.url, { intervalInMs: 250 }),
      );
      const result = await poller.pollUntilDone();
      if (result.copyStatus !== "success") {
        throw new BackendError(DRIVER_NAME, "move", sourcePath, {
          cause: new Error(`copy to ${destPath} ended with status ${result.copyStatus}`),
        });
      }
    } catch (error) {
      throw translateError(error, "move", sourcePath);
    }
    try {
      await source.deleteIfExists();
    } catch (error) {
      throw translateError(error, "move", sourcePath);
    }
  }

  async delete(path: StoragePath, options?: CallOptions): Promise<void> {
    let found = false;
    const abortSignal = options?.signal;
    const remove = async (name: string) => {
      // Gone already (a concurrent delete) is as good as deleted.
      const { succeeded } = await this.container
        .getBlobClient(name)
        .deleteIfExists({ abortSignal });
      if (succeeded) found = true;
    };
    try {
      await remove(this.blobName(path));
      // Page by page, so memory stays at one page of names however large the directory; the
      // listing continues by name, so deleting what it returned does not disturb it.
      const pages = this.container
        .listBlobsFlat({ prefix: this.prefixOf(path), abortSignal })
        .byPage();
      for await (const page of pages) {
        const names = page.segment.blobItems.map((item) => item.name);
        await forEachLimited(names, DELETE_CONCURRENCY, remove);
      }
    } catch (error) {
      if (serviceStatus(error) !== 404) throw translateError(error, "delete", path);
    }
    if (!found) throw new PathNotFoundError(DRIVER_NAME, path);
  }

  async redirectURL(path: StoragePath, options: RedirectOptions = {}): Promise<string | null> {
    const expiresOn = new Date(Date.now() + (options.expiresIn ?? DEFAULT_REDIRECT_SECONDS) * 1000);
    // Read permission covers GET and HEAD; an https service is never signed for plain http.
    const protocol = this.options.serviceUrl.startsWith("https:")
      ? SASProtocol.Https
      : SASProtocol.HttpsAndHttp;
    const sas = { permissions: BlobSASPermissions.parse("r"), expiresOn, protocol };
    const blob = this.container.getBlobClient(this.blobName(path));
    try {
      if (this.sharedKey !== undefined) return await blob.generateSasUrl(sas);
      // A user delegation key, and so a URL signed with it, lives at most 7 days.
      const latest = Date.now() + MAX_DELEGATION_SECONDS * 1000;
      if (sas.expiresOn.getTime() > latest) sas.expiresOn = new Date(latest);
      const key = await this.userDelegationKey(sas.expiresOn);
      return key === null ? null : await blob.generateUserDelegationSasUrl(sas, key);
    } catch (error) {
      throw translateError(error, "redirectURL", path);
    }
  }

  async walk(path: StoragePath, fn: WalkFn, options?: CallOptions): Promise<void> {
    const files: FileInfo[] = [];
    const listing = { prefix: this.prefixOf(path), abortSignal: options?.signal };
    try {
      for await (const item of this.container.listBlobsFlat(listing)) {
        files.push({
          path: this.pathOf(item.name),
          size: item.properties.contentLength ?? 0,
          modTime: item.properties.lastModified,
          isDir: false,
        });
      }
    } catch (error) {
      if (serviceStatus(error) !== 404 || path !== "/") throw translateError(error, "walk", path);
    }
    if (files.length === 0 && path !== "/" && !(await this.isFile(path, "walk"))) {
      throw new PathNotFoundError(DRIVER_NAME, path);
    }
    await walkFlatListing(path, files, fn);
  }

  /**
   * Runs a request that writes, creating the container when the service says it does not exist
   * (as distribution did), then trying once more. Needs permission to create containers only then.
   */
  private async write<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (serviceErrorCode(error) !== "ContainerNotFound") throw error;
      await this.container.createIfNotExists();
      return request();
    }
  }

  /**
   * A user delegation key valid past `until`, fetched with the identity credential and reused;
   * null when the identity may not get one (the role lacks generateUserDelegationKey).
   */
  private async userDelegationKey(until: Date): Promise<UserDelegationKey | null> {
    if (Date.now() < this.delegationDeniedUntil) return null;
    if (this.delegationKey === undefined || this.delegationKeyExpiry < until.getTime()) {
      const startsOn = new Date(Date.now() - 5 * 60 * 1000);
      const expiresOn = new Date(
        Math.max(until.getTime(), Date.now() + DELEGATION_KEY_SECONDS * 1000),
      );
      this.delegationKeyExpiry = expiresOn.getTime();
      this.delegationKey = this.service.getUserDelegationKey(startsOn, expiresOn);
    }
    try {
      return await this.delegationKey;
    } catch (error) {
      this.delegationKey = undefined;
      if (serviceStatus(error) !== 403) throw error;
      // Permissions rarely change; asking on every redirect would double each blob GET.
      this.delegationDeniedUntil = Date.now() + DELEGATION_RETRY_SECONDS * 1000;
      return null;
    }
  }

  private async isFile(path: StoragePath, operation: string): Promise<boolean> {
    try {
      await this.blob(path).getProperties();
      return true;
    } catch (error) {
      if (serviceStatus(error) === 404) return false;
      throw translateError(error, operation, path);
    }
  }

  private blob(path: StoragePath): BlockBlobClient {
    return this.container.getBlockBlobClient(this.blobName(path));
  }

  private blobName(path: StoragePath): string {
    return this.options.rootPrefix + path.slice(1);
  }

  /** The name prefix of everything below directory `path`. */
  private prefixOf(path: StoragePath): string {
    return path === "/" ? this.options.rootPrefix : `${this.blobName(path)}/`;
  }

  private pathOf(name: string): StoragePath {
    return `/${name.slice(this.options.rootPrefix.length)}`;
  }
}
