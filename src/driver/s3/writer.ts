// Over 400 lines: one writer over multipart uploads, its resume and its three ways to publish.
// FileWriter on S3 multipart uploads.
//
// Bytes collect in one buffer of at most `chunksize`; each full buffer becomes one part of a
// multipart upload (created on the first full chunk), so memory stays at one chunk whatever the
// blob size. Content that never fills a chunk is stored with one PutObject at commit.
//
// Resuming from any process: `close()` leaves the multipart upload in progress, and S3 lists it
// (ListMultipartUploads, ListParts) to whoever asks. What S3 cannot do is take a part smaller than
// 5 MiB anywhere but last, nor give back the bytes of an uploaded part. So `close()` never uploads
// a part under 5 MiB: it stores those trailing bytes (the "tail") as a separate object next to the
// key, `<key>~tail`, which no valid driver path can name and which list/stat/walk hide. The tail
// records the upload id and the number of parts it follows; a resuming writer uses it only when
// both match what S3 lists, so a tail left behind by a crash after its bytes went into a part is
// never counted twice. Nothing is visible at the key until commit (distribution instead completes
// the upload early and copies it back, which shows partial content at the key).

import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { PathNotFoundError, type FileWriter, type StoragePath } from "../driver.js";
import { WriterState } from "../writer-state.js";
import { httpStatus, toDriverError } from "./errors.js";
import { DRIVER_NAME, MIN_PART_SIZE } from "./parameters.js";
import {
  TAIL_PARTS,
  TAIL_SUFFIX,
  TAIL_UPLOAD_ID,
  abortUpload,
  deleteTail,
  inProgressUploads,
  listParts,
  putObjectCommand,
  readTail,
  type UploadedPart,
  type WriterContext,
} from "./uploads.js";

/** The writer's starting point: an upload in progress, its parts, and bytes from a tail. */
interface ResumePoint {
  uploadId: string | undefined;
  parts: UploadedPart[];
  tail: Buffer | undefined;
}

/** A writer that starts empty, discarding whatever an earlier writer left for `key`. */
export async function newWriter(
  context: WriterContext,
  path: StoragePath,
  key: string,
  signal?: AbortSignal,
): Promise<FileWriter> {
  const uploads = await inProgressUploads(context, path, key);
  await Promise.all([
    ...uploads.map((uploadId) => abortUpload(context, path, key, uploadId)),
    deleteTail(context, path, key),
  ]);
  return emptyWriter(context, path, key, signal);
}

/** A writer with nothing written: no upload yet, no tail. */
function emptyWriter(
  context: WriterContext,
  path: StoragePath,
  key: string,
  signal?: AbortSignal,
): S3FileWriter {
  return new S3FileWriter(
    context,
    path,
    key,
    { uploadId: undefined, parts: [], tail: undefined },
    signal,
  );
}

/**
 * A writer resuming what a `close()`d writer left for `key`, in this process or another. With
 * `newIfMissing`, a key with neither a tail nor an upload in progress gets a new empty writer
 * (WriterOptions.newIfMissing): nothing was written there, so there is nothing for newWriter to
 * clean up, and an upload's first bytes cost two requests (sent together) where a failed resume
 * then newWriter took four.
 */
export async function resumeWriter(
  context: WriterContext,
  path: StoragePath,
  key: string,
  signal?: AbortSignal,
  newIfMissing = false,
): Promise<FileWriter> {
  // A tail names the upload its session wrote to: then there is no need to list the uploads.
  // Without a tail, or with one that names none (a session that may have started an upload
  // after it), the uploads in progress are listed. writer(path, false) aborts older uploads, so
  // there is normally one; the newest is the one. A writer that most likely starts new
  // (newIfMissing) lists them while the tail is asked for, as it will need the list.
  const [tail, listed] = await Promise.all([
    readTail(context, path, key),
    newIfMissing ? inProgressUploads(context, path, key) : undefined,
  ]);
  let uploadId = tail?.uploadId === "" ? undefined : tail?.uploadId;
  let parts = uploadId === undefined ? undefined : await listParts(context, path, key, uploadId);
  if (parts === undefined) {
    uploadId = (listed ?? (await inProgressUploads(context, path, key))).at(-1);
    parts = uploadId === undefined ? [] : await listParts(context, path, key, uploadId);
    // Aborted since it was listed: as if there were none.
    if (parts === undefined) uploadId = undefined;
  }
  parts ??= [];
  const tailMatches =
    tail !== undefined && tail.uploadId === (uploadId ?? "") && tail.parts === parts.length;
  if (tail !== undefined && !tailMatches) {
    await deleteTail(context, path, key);
  }
  if (uploadId === undefined && !tailMatches) {
    if (newIfMissing && tail === undefined) return emptyWriter(context, path, key, signal);
    throw new PathNotFoundError(DRIVER_NAME, path);
  }
  const last = parts.at(-1);
  if (last !== undefined && last.Size < MIN_PART_SIZE) {
    // Only another client (distribution closes with short parts) leaves this; its bytes cannot be
    // read back from an incomplete upload, so appending after it is impossible.
    throw toDriverError(
      new Error(
        `part ${last.PartNumber} of upload ${uploadId} is ${last.Size} bytes, under S3's 5 MiB minimum; it was not written by Berth and cannot be resumed`,
      ),
      { operation: "ListParts", bucket: context.bucket, key, path },
    );
  }
  return new S3FileWriter(
    context,
    path,
    key,
    { uploadId, parts, tail: tailMatches ? tail.bytes : undefined },
    signal,
  );
}

class S3FileWriter implements FileWriter {
  private readonly state: WriterState;
  private uploadId: string | undefined;
  private readonly parts: UploadedPart[];
  private partsSize: number;
  /** Bytes not yet in a part; grows by doubling up to chunkSize, then is reused. */
  private buffer: Buffer;
  private buffered = 0;
  /** A tail object from an earlier session exists; its bytes are now in `buffer`. */
  private tailToRemove: boolean;
  /**
   * commitTo completed the multipart upload at this writer's own key and has still to move it
   * (its copy failed): a retry only moves it, and cancel deletes it.
   */
  private completedHere = false;

  constructor(
    private readonly context: WriterContext,
    private readonly path: StoragePath,
    private readonly key: string,
    start: ResumePoint,
    /** The writer call's signal: it aborts a part upload that `write` has in flight. */
    private readonly signal?: AbortSignal,
  ) {
    this.state = new WriterState(DRIVER_NAME, path);
    this.uploadId = start.uploadId;
    this.parts = start.parts;
    this.partsSize = start.parts.reduce((sum, part) => sum + part.Size, 0);
    this.tailToRemove = start.tail !== undefined;
    const initial = start.tail ?? Buffer.alloc(0);
    this.buffer = Buffer.allocUnsafe(
      Math.min(context.chunkSize, Math.max(initial.length, 64 * 1024)),
    );
    initial.copy(this.buffer);
    this.buffered = initial.length;
  }

  get size(): number {
    return this.partsSize + this.buffered;
  }

  async write(chunk: Uint8Array): Promise<void> {
    await this.state.run(async () => {
      let offset = 0;
      while (offset < chunk.length) {
        const room = this.context.chunkSize - this.buffered;
        const take = Math.min(room, chunk.length - offset);
        this.reserve(this.buffered + take);
        this.buffer.set(chunk.subarray(offset, offset + take), this.buffered);
        this.buffered += take;
        offset += take;
        if (this.buffered === this.context.chunkSize) await this.uploadPart(this.signal);
      }
    });
  }

  async close(): Promise<void> {
    await this.state.run(async () => {
      if (this.buffered >= MIN_PART_SIZE) await this.uploadPart();
      if (this.buffered > 0 || this.uploadId === undefined) {
        await this.putTail();
      } else if (this.tailToRemove) {
        await deleteTail(this.context, this.path, this.key);
      }
    }, "closed");
  }

  async cancel(): Promise<void> {
    await this.state.run(async () => {
      const uploadId = this.uploadId;
      await Promise.all([
        uploadId === undefined || this.completedHere
          ? undefined
          : abortUpload(this.context, this.path, this.key, uploadId),
        deleteTail(this.context, this.path, this.key),
        this.completedHere ? this.context.objects.remove(this.path) : undefined,
      ]);
    }, "cancelled");
  }

  /**
   * Publishes the content at `destination` instead of the writer's key; nothing is left at the
   * writer's key. Content that never filled a part (every small blob) is one PutObject at the
   * destination, where commit then the driver's `move` took a PutObject, a HeadObject, a
   * CopyObject and a DeleteObjects, and the upload's removal a listing more. Content in a
   * multipart upload can only be completed at its own key, so it is completed there and moved as
   * `move` does (a server-side copy, then the deletion).
   */
  async commitTo(destination: StoragePath): Promise<void> {
    await this.state.run(async () => {
      if (this.inMultipart) {
        if (!this.completedHere) {
          if (this.buffered > 0) await this.uploadPart();
          await this.completeUpload(this.uploadId as string);
          this.completedHere = true;
          if (this.tailToRemove) await deleteTail(this.context, this.path, this.key);
          this.tailToRemove = false;
        }
        await this.context.objects.move(this.path, destination, this.size);
        return;
      }
      await this.publishAndClean(async () => {
        await this.putObject(this.context.objects.keyOf(destination));
        return true;
      });
    }, "committed");
  }

  /**
   * commitTo, unless an object is stored at `destination`: then the writer is cancelled and what
   * is stored stays. Content that never filled a part is one PutObject with `If-None-Match: *`
   * (S3 and Ceph RGW answer 412 when the key exists), where a HeadObject first took a request
   * more. Content in a multipart upload is looked for with a HeadObject first.
   */
  async commitToIfAbsent(destination: StoragePath): Promise<boolean> {
    this.state.check();
    if (this.inMultipart) {
      if (await this.context.objects.exists(destination)) {
        await this.cancel();
        return false;
      }
      await this.commitTo(destination);
      return true;
    }
    const stored = await this.state.run(async () => {
      const key = this.context.objects.keyOf(destination);
      // A HeadObject, then a plain write where the key is missing: safe, as the bytes are the
      // same as any stored there (their digest was checked before).
      const lookThenPut = async () => {
        const missing = !(await this.context.objects.exists(destination));
        if (missing) await this.putObject(key);
        return missing;
      };
      const conditionalPut = async () => {
        try {
          await this.context.client.send(this.putCommand(key, { IfNoneMatch: "*" }));
          return true;
        } catch (error) {
          const status = httpStatus(error);
          if (status === 412) return false;
          // 409 (AWS): a conditional write of the same key is in progress, which may yet fail;
          // never take it for a stored object. 501: a store without conditional writes.
          if (status === 501) this.context.conditionalPuts.refused = true;
          if (status === 409 || status === 501) return lookThenPut();
          throw toDriverError(error, { operation: "PutObject", bucket: this.context.bucket, key });
        }
      };
      return this.publishAndClean(
        this.context.conditionalPuts.refused ? lookThenPut : conditionalPut,
      );
    });
    // Ended as committed or, with what is stored kept, as cancelled (nothing left either way).
    this.state.end(stored ? "committed" : "cancelled");
    return stored;
  }

  /** The content is in a multipart upload (completed here by a commitTo whose move failed). */
  private get inMultipart(): boolean {
    return this.completedHere || (this.uploadId !== undefined && this.parts.length > 0);
  }

  /** Runs `publish`, then drops what the writer left at its own key (an empty upload, a tail). */
  private async publishAndClean(publish: () => Promise<boolean>): Promise<boolean> {
    const put = await publish();
    if (this.uploadId !== undefined) {
      await abortUpload(this.context, this.path, this.key, this.uploadId);
    }
    if (this.tailToRemove) await deleteTail(this.context, this.path, this.key);
    return put;
  }

  async commit(): Promise<void> {
    await this.state.run(async () => {
      if (this.uploadId !== undefined && this.parts.length > 0) {
        if (this.buffered > 0) await this.uploadPart();
        await this.completeUpload(this.uploadId);
      } else {
        // Everything fits in one request. An upload created without parts (a crash right after
        // CreateMultipartUpload in an earlier session) is dropped.
        await this.putObject();
        if (this.uploadId !== undefined) {
          await abortUpload(this.context, this.path, this.key, this.uploadId);
        }
      }
      if (this.tailToRemove) await deleteTail(this.context, this.path, this.key);
    }, "committed");
  }

  /** Makes the buffer hold at least `needed` bytes (never more than a chunk). */
  private reserve(needed: number): void {
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(Math.min(capacity, this.context.chunkSize));
    this.buffer.copy(grown, 0, 0, this.buffered);
    this.buffer = grown;
  }

  /**
   * Uploads the buffered bytes as the next part; the buffer is then free for reuse. `signal`
   * aborts the request in flight: the part is then not counted and its bytes stay buffered, so
   * that a `close()` after the abort still keeps them.
   */
  private async uploadPart(signal?: AbortSignal): Promise<void> {
    const { client, bucket } = this.context;
    if (this.uploadId === undefined) {
      try {
        const created = await client.send(
          new CreateMultipartUploadCommand({
            Bucket: bucket,
            Key: this.key,
            ContentType: "application/octet-stream",
            ...this.context.objectSettings,
          }),
        );
        this.uploadId = created.UploadId;
      } catch (error) {
        throw toDriverError(error, {
          operation: "CreateMultipartUpload",
          bucket,
          key: this.key,
          path: this.path,
        });
      }
      if (this.uploadId === undefined) {
        throw toDriverError(new Error("no UploadId in the answer"), {
          operation: "CreateMultipartUpload",
          bucket,
          key: this.key,
        });
      }
    }
    const partNumber = this.parts.length + 1;
    const size = this.buffered;
    try {
      const uploaded = await client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: this.key,
          UploadId: this.uploadId,
          PartNumber: partNumber,
          Body: this.buffer.subarray(0, size),
          ContentLength: size,
        }),
        { abortSignal: signal },
      );
      this.parts.push({ PartNumber: partNumber, ETag: uploaded.ETag ?? "", Size: size });
    } catch (error) {
      throw toDriverError(error, { operation: `UploadPart ${partNumber}`, bucket, key: this.key });
    }
    this.partsSize += size;
    this.buffered = 0;
    // The tail's bytes now live in a part; the tail must go before anyone could count them twice
    // (a resumer would reject it anyway: it names fewer parts than S3 lists).
    if (this.tailToRemove) {
      await deleteTail(this.context, this.path, this.key);
      this.tailToRemove = false;
    }
  }

  private async completeUpload(uploadId: string): Promise<void> {
    const { client, bucket } = this.context;
    try {
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: this.key,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: this.parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })),
          },
        }),
      );
    } catch (error) {
      throw toDriverError(error, { operation: "CompleteMultipartUpload", bucket, key: this.key });
    }
  }

  /** Stores the buffered bytes as the whole object at `key` (the writer's own by default). */
  private async putObject(key = this.key): Promise<void> {
    try {
      await this.context.client.send(this.putCommand(key));
    } catch (error) {
      throw toDriverError(error, { operation: "PutObject", bucket: this.context.bucket, key });
    }
  }

  /** A PutObject of the buffered bytes as the whole object at `key`. */
  private putCommand(key: string, conditions: { IfNoneMatch?: string } = {}): PutObjectCommand {
    return putObjectCommand(this.context, key, this.buffer.subarray(0, this.buffered), conditions);
  }

  private async putTail(): Promise<void> {
    const { client, bucket } = this.context;
    const key = this.key + TAIL_SUFFIX;
    try {
      await client.send(
        putObjectCommand(this.context, key, this.buffer.subarray(0, this.buffered), {
          Metadata: {
            [TAIL_UPLOAD_ID]: this.uploadId ?? "",
            [TAIL_PARTS]: String(this.parts.length),
          },
        }),
      );
    } catch (error) {
      throw toDriverError(error, { operation: "PutObject", bucket, key });
    }
    this.tailToRemove = false;
  }
}
