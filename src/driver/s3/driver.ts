// Over 400 lines: one class whose methods are the contract on a bucket (listing, batched deletes
// and move by copy included); its writer and upload bookkeeping are in writer.ts and uploads.ts.
//
// The s3 driver: Amazon S3 and S3-compatible servers (Ceph RGW, MinIO, ...) through the AWS SDK for
// JavaScript v3. A path `/a/b` is the key `<rootdirectory>/a/b`, as in distribution, so a bucket
// written by distribution's s3 driver is read here and the other way round. Directories are
// implied by keys. Loaded by ./index.ts when an s3 driver is created; parameters: ./parameters.ts;
// writers: ./writer.ts; docs/driver-s3.md.

import { Agent as HttpsAgent } from "node:https";
import { Readable, type Writable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCopyCommand,
  type _Object,
  type ListObjectsV2CommandOutput,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { copyStream } from "../copy.js";
import {
  AbortedError,
  DestinationClosedError,
  PathNotFoundError,
  type BackendRequestObserver,
  type CallOptions,
  type FileInfo,
  type FileWriter,
  type RedirectOptions,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
  type WriterOptions,
} from "../driver.js";
import { isValidPath } from "../paths.js";
import { rangedRead, ReadAheadBudget, type FetchRange, type RangedReadOptions } from "../ranged.js";
import { walkFlatListing } from "../walk.js";
import { ReusedBufferAgent } from "./agent.js";
import { httpStatus, isMissingKey, toDriverError } from "./errors.js";
import { PlainRangedGets, UnusualAnswer, type RequestSigner } from "./plain-get.js";
import { DRIVER_NAME, type S3Parameters } from "./parameters.js";
import { putObjectCommand, TAIL_SUFFIX, type WriterContext } from "./uploads.js";
import { newWriter, resumeWriter } from "./writer.js";

/** How long a redirect URL stays valid when the caller does not say: distribution's 20 minutes. */
const DEFAULT_REDIRECT_SECONDS = 20 * 60;
/** Attempts per request (the first and the retries); the SDK backs off exponentially with jitter. */
const MAX_ATTEMPTS = 5;
/** S3's limit of keys per DeleteObjects request and per listing page. */
const BATCH = 1000;

/**
 * How reads fetch an object: ranged GETs of `partSize` bytes, `window` in flight per read, the
 * parts ahead of the one being delivered held in memory within `readAheadBytes` for all reads of
 * the driver together (a read that finds it spent streams part by part). Measured on Ceph RGW in
 * docs/performance.md.
 */
export interface S3ReadTuning {
  partSize: number;
  window: number;
  readAheadBytes: number;
}

const MiB = 1024 * 1024;
const DEFAULT_READ_TUNING: S3ReadTuning = {
  partSize: 8 * MiB,
  window: 4,
  readAheadBytes: 64 * MiB,
};

/** A driver storing paths as keys of one S3 bucket. */
export class S3Driver implements StorageDriver {
  readonly name = DRIVER_NAME;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly writerContext: WriterContext;
  private readonly readTuning: S3ReadTuning;
  private readonly readAhead: ReadAheadBudget;
  /** Ranged GETs without the SDK, for path-style `http://` endpoints (./plain-get.ts). */
  private readonly plainGets: PlainRangedGets | undefined;
  /** The same for copies (`copyTo`), on sockets that read into a buffer of their own. */
  private readonly plainCopies: PlainRangedGets | undefined;
  onBackendRequest: BackendRequestObserver | undefined;

  constructor(
    readonly parameters: S3Parameters,
    readTuning: Partial<S3ReadTuning> = {},
  ) {
    this.readTuning = { ...DEFAULT_READ_TUNING, ...readTuning };
    this.readAhead = new ReadAheadBudget(this.readTuning.readAheadBytes);
    this.bucket = parameters.bucket;
    this.client = new S3Client({
      region: parameters.region,
      endpoint: parameters.regionEndpoint,
      forcePathStyle: parameters.forcePathStyle,
      credentials: parameters.credentials,
      customUserAgent: parameters.userAgent,
      maxAttempts: MAX_ATTEMPTS,
      retryMode: "standard",
      // Checksums only where S3 requires them: S3-compatible servers (Ceph RGW 16) reject the
      // SDK's default trailing checksums on streamed bodies. SigV4 still signs each payload.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: {
        // Sockets reading into a reused buffer: a third of the CPU per GiB read (./agent.ts).
        httpAgent: new ReusedBufferAgent({ keepAlive: true, maxSockets: 128 }),
        httpsAgent: new HttpsAgent({
          keepAlive: true,
          maxSockets: 128,
          rejectUnauthorized: !parameters.skipVerify,
        }),
      },
    });
    // Each HTTP request the backend answered, retries included: the deserialize step runs inside
    // the retry loop, once per attempt. An attempt that failed before any answer (a keep-alive
    // socket the gateway had closed, which the SDK retries at once) never reached it and is not
    // counted, as the gateway's access log does not list it; nor is a presigned URL.
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = context.commandName?.replace(/Command$/, "") ?? "unknown";
        try {
          const result = await next(args);
          this.onBackendRequest?.(operation);
          return result;
        } catch (error) {
          if (answered(error)) this.onBackendRequest?.(operation);
          throw error;
        }
      },
      { step: "deserialize", name: "berthBackendRequests" },
    );
    this.plainGets = this.plainGetsFor(parameters, false);
    this.plainCopies = this.plainGetsFor(parameters, true);
    const objectSettings: Record<string, unknown> = {};
    if (parameters.storageClass !== undefined)
      objectSettings.StorageClass = parameters.storageClass;
    if (parameters.objectACL !== undefined) objectSettings.ACL = parameters.objectACL;
    if (parameters.encryption !== undefined) {
      objectSettings.ServerSideEncryption = parameters.encryption.mode;
      if (parameters.encryption.mode === "aws:kms")
        objectSettings.SSEKMSKeyId = parameters.encryption.keyId;
    }
    this.writerContext = {
      client: this.client,
      bucket: this.bucket,
      chunkSize: parameters.chunkSize,
      objectSettings,
      objects: {
        keyOf: (path) => this.key(path),
        exists: async (path) => (await this.head(path)) !== undefined,
        move: (source, destination, size) => this.relocate(source, destination, size),
        remove: (path) => this.deleteKeys(path, [this.key(path)]),
      },
      conditionalPuts: { refused: false },
    };
  }

  async getContent(path: StoragePath): Promise<Uint8Array> {
    const key = this.key(path);
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      return (await answer.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (error) {
      throw toDriverError(error, { operation: "GetObject", bucket: this.bucket, key, path });
    }
  }

  async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    const key = this.key(path);
    try {
      await this.client.send(putObjectCommand(this.writerContext, key, content));
    } catch (error) {
      throw toDriverError(error, { operation: "PutObject", bucket: this.bucket, key, path });
    }
  }

  /** PutObject with `If-None-Match: *`: the backend refuses (412) when the key exists. */
  async putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    const key = this.key(path);
    try {
      await this.client.send(
        putObjectCommand(this.writerContext, key, content, { IfNoneMatch: "*" }),
      );
      return true;
    } catch (error) {
      const status = httpStatus(error);
      // 412: the key exists; 409: a concurrent conditional write is in progress (AWS).
      if (status === 412 || status === 409) return false;
      throw toDriverError(error, { operation: "PutObject", bucket: this.bucket, key, path });
    }
  }

  /** Parallel ranged GETs (see S3ReadTuning); a small object costs one GET, as before. */
  reader(path: StoragePath, offset = 0, options?: CallOptions): Promise<Readable> {
    return rangedRead(this.rangeFetcher(path), this.readOptions(offset), options?.signal);
  }

  /**
   * On a plain-HTTP endpoint, one GET whose reads are written into the destination as they come
   * (PlainRangedGets.copy): into a client's socket from the socket's own reused buffer, as
   * distribution's s3 driver reads one GET through a reused buffer. Otherwise, and for what that
   * GET's answer leaves to the SDK, the parallel ranged GETs of `reader`.
   */
  async copyTo(
    path: StoragePath,
    destination: Writable,
    offset: number,
    length?: number,
    options?: CallOptions,
  ): Promise<void> {
    const signal = options?.signal;
    if (this.plainCopies !== undefined && length !== 0) {
      const key = this.key(path);
      const last = length === undefined ? undefined : offset + length - 1;
      const closed = (cause?: unknown) => new DestinationClosedError(DRIVER_NAME, path, cause);
      const copySignal = signal ?? new AbortController().signal;
      try {
        await this.plainCopies.copy(key, offset, last, destination, closed, copySignal);
        return;
      } catch (error) {
        if (signal?.aborted) throw new AbortedError(DRIVER_NAME, "copyTo", path, signal.reason);
        if (error instanceof DestinationClosedError) throw error;
        if (!(error instanceof UnusualAnswer))
          throw toDriverError(error, { operation: "GetObject", bucket: this.bucket, key, path });
        // Nothing was written yet: the ranged GETs below, which fall back to the SDK.
      }
    }
    const source = await rangedRead(
      this.rangeFetcher(path),
      { ...this.readOptions(offset), length },
      signal,
    );
    await copyStream(DRIVER_NAME, path, source, destination, length, signal);
  }

  private readOptions(offset: number): RangedReadOptions {
    const { partSize, window } = this.readTuning;
    return { offset, partSize, window, budget: this.readAhead };
  }

  /**
   * Ranged GETs on the key of `path`: our own (./plain-get.ts) where the endpoint allows, the
   * SDK's GetObject for the rest and for any answer ours leaves to the SDK.
   */
  private rangeFetcher(path: StoragePath): FetchRange {
    const key = this.key(path);
    const sdk = this.sdkRangeFetcher(path, key);
    const plain = this.plainGets;
    if (plain === undefined) return sdk;
    return async (first, last, etag, signal) => {
      try {
        return await plain.fetch(key, first, last, etag, signal);
      } catch (error) {
        if (error instanceof UnusualAnswer) return sdk(first, last, etag, signal);
        throw toDriverError(error, { operation: "GetObject", bucket: this.bucket, key, path });
      }
    };
  }

  /** Ranged GetObject requests through the SDK. */
  private sdkRangeFetcher(path: StoragePath, key: string): FetchRange {
    return async (first, last, etag, signal) => {
      let answer;
      try {
        answer = await this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Range: `bytes=${first}-${last}`,
            IfMatch: etag,
          }),
          { abortSignal: signal },
        );
      } catch (error) {
        // A range starting at or past the end: the contract's empty stream, not an error.
        if (httpStatus(error) === 416) return undefined;
        throw toDriverError(error, { operation: "GetObject", bucket: this.bucket, key, path });
      }
      const body = answer.Body instanceof Readable ? answer.Body : Readable.from([]);
      const total = /\/(\d+)$/.exec(answer.ContentRange ?? "")?.[1];
      if (total !== undefined) return { body, total: Number(total), etag: answer.ETag };
      body.destroy();
      // An empty object answers a range with all of its nothing (some servers), else 416.
      if (answer.ContentLength === 0) return undefined;
      throw toDriverError(new Error("no Content-Range in the answer to a ranged GET"), {
        operation: "GetObject",
        bucket: this.bucket,
        key,
      });
    };
  }

  /**
   * Our own ranged GETs for a path-style `http://` endpoint, signed by the client's own signer
   * (its credential provider, session tokens included, and its clock skew correction); none for
   * `https://` (TLS) or virtual-hosted addressing, which keep the SDK's path.
   */
  private plainGetsFor(
    parameters: S3Parameters,
    reusedBuffers: boolean,
  ): PlainRangedGets | undefined {
    const endpoint = parameters.regionEndpoint;
    if (endpoint === undefined || !parameters.forcePathStyle) return undefined;
    const url = new URL(endpoint);
    if (url.protocol !== "http:") return undefined;
    const config = this.client.config;
    const sign: RequestSigner = async (request) =>
      (await config.signer()).sign(request, {
        signingRegion: await config.region(),
        signingService: "s3",
        signingDate: new Date(Date.now() + config.systemClockOffset),
      });
    const target = { url, bucket: this.bucket, userAgent: parameters.userAgent };
    const onAnswer = () => this.onBackendRequest?.("GetObject");
    return new PlainRangedGets(target, sign, onAnswer, reusedBuffers);
  }

  writer(path: StoragePath, append: boolean, options?: WriterOptions): Promise<FileWriter> {
    const key = this.key(path);
    return append
      ? resumeWriter(this.writerContext, path, key, options?.signal, options?.newIfMissing)
      : newWriter(this.writerContext, path, key, options?.signal);
  }

  /**
   * PathNotFoundError naming `s3://<bucket>` when the bucket does not exist (for a garbage
   * collection, which must not take a misspelt bucket for an empty registry).
   */
  async requireBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (httpStatus(error) === 404)
        throw new PathNotFoundError(DRIVER_NAME, `s3://${this.bucket}`);
      throw toDriverError(error, { operation: "HeadBucket", bucket: this.bucket });
    }
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    if (path !== "/") {
      const file = await this.head(path);
      if (file !== undefined) return file;
    }
    for await (const object of this.listFiles(path, 1)) {
      return { path, size: 0, modTime: object.modTime, isDir: true };
    }
    if (path === "/") return { path, size: 0, modTime: new Date(0), isDir: true };
    throw new PathNotFoundError(DRIVER_NAME, path);
  }

  async list(path: StoragePath, options?: CallOptions): Promise<StoragePath[]> {
    const prefix = this.directoryPrefix(path);
    const children: StoragePath[] = [];
    let token: string | undefined;
    do {
      const page = await this.listPage(
        path,
        { Prefix: prefix, Delimiter: "/", ContinuationToken: token },
        options?.signal,
      );
      for (const object of page.Contents ?? []) {
        const child = this.pathOf(object.Key);
        if (child !== undefined) children.push(child);
      }
      for (const common of page.CommonPrefixes ?? []) {
        const child = this.pathOf(common.Prefix?.slice(0, -1));
        if (child !== undefined) children.push(child);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    if (children.length === 0 && path !== "/") {
      // A file has no children; only a path that is nothing at all is not found.
      if ((await this.head(path)) !== undefined) return [];
      throw new PathNotFoundError(DRIVER_NAME, path);
    }
    return children;
  }

  async move(sourcePath: StoragePath, destPath: StoragePath, options?: CallOptions): Promise<void> {
    const source = await this.head(sourcePath);
    if (source === undefined) throw new PathNotFoundError(DRIVER_NAME, sourcePath);
    if (sourcePath === destPath) return;
    await this.relocate(sourcePath, destPath, source.size, options?.signal);
  }

  /**
   * `move`'s copy and deletion, for a source of known size (a writer's completed upload moved by
   * commitTo knows it without a HeadObject).
   */
  private async relocate(
    sourcePath: StoragePath,
    destPath: StoragePath,
    size: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const sourceKey = this.key(sourcePath);
    const destKey = this.key(destPath);
    if (size <= this.parameters.multipartCopyThresholdSize) {
      try {
        await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: destKey,
            CopySource: this.copySource(sourceKey),
            ContentType: "application/octet-stream",
            ...this.writerContext.objectSettings,
          }),
          { abortSignal: signal },
        );
      } catch (error) {
        throw toDriverError(error, {
          operation: `CopyObject to ${destKey} from`,
          bucket: this.bucket,
          key: sourceKey,
          path: sourcePath,
        });
      }
    } else {
      await this.multipartCopy(sourcePath, sourceKey, destKey, size, signal);
    }
    // Not aborted once the copy is in place: a move that happened removes its source.
    await this.deleteKeys(sourcePath, [sourceKey]);
  }

  async delete(path: StoragePath, options?: CallOptions): Promise<void> {
    const key = this.key(path);
    const signal = options?.signal;
    // The key itself, everything below `key/`, and the tail of a closed writer at the key; never
    // a sibling such as `key-b` or `keyb`. The first page of keys below is listed while the
    // uploads are aborted, and deleted in one request with the key and its tail; the key is
    // asked for (HEAD) only when nothing is below it, to tell a missing path.
    const below = (token?: string) =>
      this.listPage(path, { Prefix: `${key}/`, ContinuationToken: token }, signal);
    const [page] = await Promise.all([below(), this.abortUploadsBelow(path, key)]);
    let found = false;
    let current: ListObjectsV2CommandOutput | undefined = page;
    // DeleteObjects takes 1000 keys: the key and its tail go with the first page (up to 1000).
    const batch = [key, key + TAIL_SUFFIX];
    while (current !== undefined) {
      const keys = (current.Contents ?? []).flatMap((object) =>
        object.Key === undefined ? [] : [object.Key],
      );
      found ||= keys.some((listed) => this.pathOf(listed) !== undefined);
      if (current === page && !found) found = (await this.head(path)) !== undefined;
      batch.push(...keys);
      while (batch.length > 0) await this.deleteKeys(path, batch.splice(0, BATCH), signal);
      const token: string | undefined = current.IsTruncated
        ? current.NextContinuationToken
        : undefined;
      current = token === undefined ? undefined : await below(token);
    }
    if (!found) throw new PathNotFoundError(DRIVER_NAME, path);
  }

  async redirectURL(path: StoragePath, options: RedirectOptions = {}): Promise<string | null> {
    const key = this.key(path);
    const expiresIn = options.expiresIn ?? DEFAULT_REDIRECT_SECONDS;
    const command =
      options.method === "HEAD"
        ? new HeadObjectCommand({ Bucket: this.bucket, Key: key })
        : new GetObjectCommand({ Bucket: this.bucket, Key: key });
    try {
      return await getSignedUrl(this.client, command, { expiresIn });
    } catch (error) {
      throw toDriverError(error, { operation: "presign", bucket: this.bucket, key, path });
    }
  }

  async walk(path: StoragePath, fn: WalkFn, options?: CallOptions): Promise<void> {
    // One flat listing, without a delimiter: a request per 1000 keys, not one per directory.
    const files: FileInfo[] = [];
    for await (const file of this.listFiles(path, BATCH, options?.signal)) files.push(file);
    if (files.length === 0 && path !== "/" && (await this.head(path)) === undefined) {
      throw new PathNotFoundError(DRIVER_NAME, path);
    }
    await walkFlatListing(path, files, fn);
  }

  /** The key of a path: `/a/b` is `<rootdirectory>/a/b` (no leading slash, as distribution). */
  private key(path: StoragePath): string {
    return this.parameters.keyPrefix + path.slice(1);
  }

  /** The prefix of every key below directory `path`. */
  private directoryPrefix(path: StoragePath): string {
    return path === "/" ? this.parameters.keyPrefix : `${this.key(path)}/`;
  }

  /**
   * The path a listed key stands for, or undefined for keys no driver path names: tails of closed
   * writers, "directory marker" objects ending in `/`, and anything else foreign to the contract.
   */
  private pathOf(key: string | undefined): StoragePath | undefined {
    if (key === undefined || !key.startsWith(this.parameters.keyPrefix)) return undefined;
    const path = `/${key.slice(this.parameters.keyPrefix.length)}`;
    return isValidPath(path) ? path : undefined;
  }

  private copySource(key: string): string {
    return `${this.bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  /** FileInfo of the file at `path`, or undefined when there is no object with its key. */
  private async head(path: StoragePath): Promise<FileInfo | undefined> {
    const key = this.key(path);
    try {
      const answer = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      return {
        path,
        size: answer.ContentLength ?? 0,
        modTime: answer.LastModified ?? new Date(0),
        isDir: false,
      };
    } catch (error) {
      if (isMissingKey(error)) return undefined;
      throw toDriverError(error, { operation: "HeadObject", bucket: this.bucket, key, path });
    }
  }

  private async listPage(
    path: StoragePath,
    input: { Prefix: string; Delimiter?: string; ContinuationToken?: string; MaxKeys?: number },
    signal?: AbortSignal,
  ): Promise<ListObjectsV2CommandOutput> {
    try {
      return await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, ...input }), {
        abortSignal: signal,
      });
    } catch (error) {
      throw toDriverError(error, {
        operation: "ListObjectsV2",
        bucket: this.bucket,
        key: input.Prefix,
        path,
      });
    }
  }

  /** Every file strictly below directory `path`, in key order, `pageSize` keys per request. */
  private async *listFiles(
    path: StoragePath,
    pageSize = BATCH,
    signal?: AbortSignal,
  ): AsyncGenerator<FileInfo> {
    const prefix = this.directoryPrefix(path);
    let token: string | undefined;
    do {
      const page = await this.listPage(
        path,
        { Prefix: prefix, ContinuationToken: token, MaxKeys: pageSize },
        signal,
      );
      for (const object of page.Contents ?? []) {
        const info = this.fileInfo(object);
        if (info !== undefined) yield info;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  private fileInfo(object: _Object): FileInfo | undefined {
    const path = this.pathOf(object.Key);
    if (path === undefined) return undefined;
    return {
      path,
      size: object.Size ?? 0,
      modTime: object.LastModified ?? new Date(0),
      isDir: false,
    };
  }

  /** Deletes `keys` (at most 1000) in one request; keys that do not exist are no error. */
  private async deleteKeys(path: StoragePath, keys: string[], signal?: AbortSignal): Promise<void> {
    let answer;
    try {
      answer = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true },
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      throw toDriverError(error, {
        operation: "DeleteObjects",
        bucket: this.bucket,
        key: keys[0],
        path,
      });
    }
    const failed = answer.Errors?.[0];
    if (failed !== undefined) {
      const cause = Object.assign(new Error(failed.Message ?? "not deleted"), {
        name: failed.Code ?? "Error",
      });
      throw toDriverError(cause, {
        operation: `DeleteObjects (${answer.Errors?.length} failed)`,
        bucket: this.bucket,
        key: failed.Key,
        path,
      });
    }
  }

  /**
   * Aborts the multipart uploads in progress at `key` and below `key/`: a deleted upload
   * directory must not leave parts behind (they are stored, and billed, until aborted).
   */
  private async abortUploadsBelow(path: StoragePath, key: string): Promise<void> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: key,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (error) {
        throw toDriverError(error, {
          operation: "ListMultipartUploads",
          bucket: this.bucket,
          key,
          path,
        });
      }
      const ours = (page.Uploads ?? []).filter(
        (upload) => upload.Key === key || upload.Key?.startsWith(`${key}/`),
      );
      await Promise.all(
        ours.map(async (upload) => {
          try {
            await this.client.send(
              new AbortMultipartUploadCommand({
                Bucket: this.bucket,
                Key: upload.Key,
                UploadId: upload.UploadId,
              }),
            );
          } catch (error) {
            if ((error as { name?: string }).name === "NoSuchUpload") return;
            throw toDriverError(error, {
              operation: "AbortMultipartUpload",
              bucket: this.bucket,
              key: upload.Key,
              path,
            });
          }
        }),
      );
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.NextUploadIdMarker;
    } while (keyMarker !== undefined);
  }

  /**
   * Copies an object above the threshold in parallel ranges (UploadPartCopy). `signal` aborts the
   * part copies in flight; the upload is then aborted and the destination is untouched.
   */
  private async multipartCopy(
    sourcePath: StoragePath,
    sourceKey: string,
    destKey: string,
    size: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const { multipartCopyChunkSize: chunk, multipartCopyMaxConcurrency } = this.parameters;
    const target = { bucket: this.bucket, key: destKey, path: sourcePath };
    let uploadId: string | undefined;
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: destKey,
          ContentType: "application/octet-stream",
          ...this.writerContext.objectSettings,
        }),
      );
      uploadId = created.UploadId;
    } catch (error) {
      throw toDriverError(error, { operation: "CreateMultipartUpload", ...target });
    }
    const count = Math.ceil(size / chunk);
    const etags: string[] = new Array<string>(count);
    let next = 0;
    const copyParts = async () => {
      while (next < count) {
        const index = next++;
        const first = index * chunk;
        const last = Math.min(size, first + chunk) - 1;
        const answer = await this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: destKey,
            UploadId: uploadId,
            PartNumber: index + 1,
            CopySource: this.copySource(sourceKey),
            CopySourceRange: `bytes=${first}-${last}`,
          }),
          { abortSignal: signal },
        );
        etags[index] = answer.CopyPartResult?.ETag ?? "";
      }
    };
    try {
      await Promise.all(
        Array.from({ length: Math.min(count, multipartCopyMaxConcurrency) }, copyParts),
      );
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: destKey,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        }),
      );
    } catch (error) {
      // Best effort: the copy's own error is what the caller needs to see.
      await this.client
        .send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: destKey,
            UploadId: uploadId,
          }),
        )
        .catch(() => undefined);
      throw toDriverError(error, {
        operation: `multipart copy from ${sourceKey} to`,
        ...target,
        path: undefined,
      });
    }
  }
}

/** Whether an SDK error carries the backend's answer (an HTTP status), not only a socket error. */
function answered(error: unknown): boolean {
  const { $response, $metadata } = (error ?? {}) as {
    $response?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  return $response !== undefined || $metadata?.httpStatusCode !== undefined;
}
