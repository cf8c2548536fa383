// Over 400 lines: one upload session's life (start, resume, append, finish, cancel) over its files.
// Uploads: `_uploads/<id>/data` grows through a driver FileWriter that is resumed and closed on
// every append, so an upload survives the client, the process and the replica that started it.
// The data file is created by the first append: an upload finished without one is the empty blob.
//
// Starting an upload stores nothing. Its id is a UUIDv7 whose first 48 bits are the time it
// started, so any replica (or this process after a restart) knows an upload that stored nothing
// yet by its id alone, for the purger's age (UNSTARTED_FOR_MS by default). `startedat` is written
// just before the first bytes are kept (an append, or a last chunk cut short): what the purger,
// other replicas and distribution look for. A push whose PUT carries the whole blob thus never
// writes `startedat`, nor deletes it (5 file system calls and 2 inodes fewer per small push,
// docs/performance.md). Uploads this process ended are remembered (`endedUploads`), so their ids
// are unknown again at once here; on another replica such an id reads as an upload that stored
// nothing.
//
// The bytes are hashed (sha256) as they stream past. A FileWriter's content is not readable before
// commit and a node:crypto Hash cannot be serialized, so the running hash lives in process memory,
// keyed by upload and tagged with the offset it covers. At completion it is used only when that
// offset equals the data's size; otherwise (a restart, another replica appended, a sha512 digest)
// the committed data is read back and hashed once.
//
// The same state lets this process resume an upload it started or appended to without reading
// `startedat` or probing the data's size. Should another replica have appended meanwhile, the
// resumed writer's size gives it away and the append is refused with the upload's real offset
// (RANGE_INVALID) rather than written at the wrong place.

import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { FileWriter } from "../driver/index.js";
import {
  canCommitTo,
  deleteIfPresent,
  isPathNotFound,
  unlessNotFound,
  type PublishingWriter,
} from "./blobstore.js";
import type { StorageContext, UploadHashState as HashState } from "./context.js";
import {
  createDigester,
  digestOf,
  digestOfStream,
  parseDigest,
  type DigestAlgorithm,
  type ParsedDigest,
} from "./digest.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { paths } from "./paths.js";
import type { BlobInfo, Digest, StreamOptions, UploadSession } from "./types.js";

/** What uploads share across sessions: storage, the hash states and the per-upload queue. */
export type UploadContext = Pick<
  StorageContext,
  | "driver"
  | "blobs"
  | "links"
  | "hashStates"
  | "endedUploads"
  | "options"
  | "queue"
  | "checkWritable"
  | "protection"
  | "quotas"
>;

/**
 * The upload ids Berth accepts: its own are UUIDs; distribution's are UUIDs too. Anything else
 * cannot name an upload (and never reaches a storage path).
 */
const UPLOAD_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** True when `id` can name an upload. */
export function isValidUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

function uploadUnknown(repository: string, id: string): RegistryError {
  return new RegistryError(
    RegistryErrorCode.BlobUploadUnknown,
    `no upload ${JSON.stringify(id)} in repository ${repository}`,
    { repository, uuid: id },
  );
}

/**
 * How long an upload that stored nothing can be resumed by its id alone, unless the purger's age
 * says otherwise (options.unstartedUploadMs): 7 days, the age at which distribution's (and Berth's
 * default) purger removes an abandoned upload that did store something.
 */
export const UNSTARTED_FOR_MS = 7 * 24 * 60 * 60 * 1000;

/** An upload id (UUIDv7, RFC 9562) for an upload started at `now` (ms since the epoch). */
export function newUploadId(now: number): string {
  const time = now.toString(16).padStart(12, "0");
  // randomUUID's version nibble (position 14) becomes 7; its variant and 74 random bits stay.
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

const UUID_V7 = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * When an upload that stored nothing started, from its id; undefined when `id` is not one of
 * Berth's (a UUIDv7) or names a time more than `maxAgeMs` ago or over a minute ahead.
 */
export function unstartedSince(id: string, maxAgeMs: number, now = Date.now()): Date | undefined {
  const match = UUID_V7.exec(id);
  if (match === null) return undefined;
  const time = Number.parseInt(`${match[1]}${match[2]}`, 16);
  if (time < now - maxAgeMs || time > now + 60_000) return undefined;
  return wholeSeconds(time);
}

/** `time` (ms) without its fraction of a second, as `startedat` holds it. */
function wholeSeconds(time: number): Date {
  return new Date(time - (time % 1000));
}

/** RFC 3339 in UTC without fractions, as distribution writes `startedat`. */
function rfc3339(date: Date): string {
  // toISOString is always `YYYY-MM-DDTHH:mm:ss.sssZ` for the years a clock gives.
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** Starts a new upload in `repository`. */
export async function startUpload(
  context: UploadContext,
  repository: string,
): Promise<UploadSession> {
  context.checkWritable();
  const now = Date.now();
  const id = newUploadId(now);
  const startedAt = wholeSeconds(now);
  context.hashStates.set(paths.upload(repository, id), {
    offset: 0,
    hash: createDigester("sha256"),
    startedAt,
    unstarted: true,
  });
  return new Upload(context, repository, id, startedAt, 0, true);
}

/** Resumes upload `id` of `repository` from storage; BLOB_UPLOAD_UNKNOWN if there is none. */
export async function resumeUpload(
  context: UploadContext,
  repository: string,
  id: string,
): Promise<UploadSession> {
  if (!isValidUploadId(id)) throw uploadUnknown(repository, id);
  const key = paths.upload(repository, id);
  return context.queue.run(key, async () => {
    const maxAgeMs = context.options.unstartedUploadMs;
    const state = context.hashStates.get(key);
    if (state?.unstarted === true && unstartedSince(id, maxAgeMs) === undefined) {
      // Older than the purger's age: abandoned, as the purger would have it if it had stored data.
      context.hashStates.delete(key);
      throw uploadUnknown(repository, id);
    }
    if (state !== undefined) {
      const { startedAt, offset, unstarted } = state;
      return new Upload(context, repository, id, startedAt, offset, unstarted === true);
    }
    const startedAtBytes = await unlessNotFound(
      context.driver.getContent(paths.uploadStartedAt(repository, id)),
    );
    if (startedAtBytes === undefined) {
      // Nothing stored: an upload started elsewhere (or before a restart) that stored nothing yet,
      // if the id says so and this process did not end it.
      const since = unstartedSince(id, maxAgeMs);
      if (since === undefined || context.endedUploads.get(key) !== undefined) {
        throw uploadUnknown(repository, id);
      }
      return new Upload(context, repository, id, since, 0, true);
    }
    const startedAt = new Date(Buffer.from(startedAtBytes).toString("utf8").trim());
    // Empty or torn by a machine crash (it is written unsynced): as if it were lost.
    if (Number.isNaN(startedAt.getTime())) throw uploadUnknown(repository, id);
    const size = await currentSize(context, repository, id);
    return new Upload(context, repository, id, startedAt, size, false);
  });
}

/**
 * The size of an upload known to exist: resumed writers report it (closed data may not be
 * readable); committed data has it; without data nothing was appended yet.
 */
async function currentSize(
  context: UploadContext,
  repository: string,
  id: string,
): Promise<number> {
  const path = paths.uploadData(repository, id);
  let writer: FileWriter;
  try {
    writer = await context.driver.writer(path, true);
  } catch (error) {
    if (!isPathNotFound(error)) throw error;
    // Completion committed the data but did not get to remove the upload: it can still finish.
    const info = await unlessNotFound(context.driver.stat(path));
    return info?.size ?? 0;
  }
  const size = writer.size;
  await writer.close();
  return size;
}

class Upload implements UploadSession {
  /** The upload's directory: the key of its hash state and of its queue. */
  private readonly key: string;

  constructor(
    private readonly context: UploadContext,
    readonly repository: string,
    readonly id: string,
    readonly startedAt: Date,
    public size: number,
    /** Nothing of the upload is stored yet, not even `startedat`. */
    private unstarted: boolean,
  ) {
    this.key = paths.upload(repository, id);
  }

  append(data: Readable | AsyncIterable<Uint8Array>, options?: StreamOptions): Promise<number> {
    return this.context.queue.run(this.key, async () => {
      this.context.checkWritable();
      // The writer first: for an upload that stored nothing yet, the driver then finds no
      // directory and starts it new (newIfMissing), where `startedat` written first would make it
      // look for something to resume (on a filesystem, 7 calls more per upload). `startedat` is
      // still written before any byte is kept (closed).
      const writer = await this.openWriter(options);
      try {
        await this.markStarted();
      } catch (error) {
        // Nothing was written in this session: nothing to keep of it.
        await writer.cancel().catch(() => undefined);
        throw error;
      }
      await this.receive(writer, data);
      await this.closeWriter(writer);
      return this.size;
    });
  }

  finish(
    digest: Digest,
    size?: number,
    data?: Readable | AsyncIterable<Uint8Array>,
    options?: StreamOptions,
  ): Promise<BlobInfo> {
    return this.context.queue.run(this.key, async () => {
      this.context.checkWritable();
      const expected = parseDigest(digest);
      const dataPath = paths.uploadData(this.repository, this.id);
      let total: number | undefined;
      if (data !== undefined) {
        // The last chunk goes into the writer that publishes the data: no close and resume. A
        // sha256 blob is published from the running hash (finishInto), so a writer that starts
        // new may keep its bytes where the blob goes (stageNear).
        const stageNear = expected.algorithm === "sha256" ? paths.blobData(expected) : undefined;
        const writer = await this.openWriter(options, stageNear);
        try {
          await this.receive(writer, data);
        } catch (error) {
          // receive closed the writer, keeping what arrived.
          await this.keep();
          throw error;
        }
        if (canCommitTo(writer)) {
          const actual = this.runningDigest(expected.algorithm, writer.size);
          if (actual !== undefined) return this.finishInto(writer, expected, actual, size);
        }
        total = writer.size;
        try {
          // The data moves into `blobs/` next (or is removed), and that move is synced.
          await writer.commit({ movedNext: true });
        } catch (error) {
          // An aborted commit published nothing and left the writer open: keep what arrived.
          await this.keep(writer);
          throw error;
        }
      } else {
        const resumed = await this.resumeData(dataPath);
        if (resumed === undefined || typeof resumed === "number") {
          total = resumed;
        } else {
          // Bytes appended by PATCH in this process: published straight into `blobs/` from the
          // running hash, as a PUT with a body does.
          if (canCommitTo(resumed)) {
            const actual = this.runningDigest(expected.algorithm, resumed.size);
            if (actual !== undefined) return this.finishInto(resumed, expected, actual, size);
          }
          total = resumed.size;
          // As above: the data moves into `blobs/` next, and that move is synced.
          await resumed.commit({ movedNext: true });
        }
      }
      // Nothing was ever appended: there is no data file and the upload is the empty blob.
      const stored = total !== undefined;
      total ??= 0;

      await this.removeUnless(() => this.checkSize(total, size));
      const actual = await this.digestOf(expected.algorithm, dataPath, stored ? total : undefined);
      await this.removeUnless(() => this.checkBlob(expected, actual, total));

      // Stays true when the blob was stored already: then the data is left to remove. Protected
      // from a concurrent garbage collector first (protection.ts): the refresh record is written
      // before the data is found or put in place.
      const { blobs } = this.context;
      let dataLeft = stored;
      const refreshed = performance.now();
      await this.context.protection.refresh(expected);
      if (!(await blobs.exists(expected))) {
        if (stored) await blobs.adopt(expected, dataPath, total);
        else await blobs.put(expected, Buffer.alloc(0));
        dataLeft = false;
      }
      await this.writeLink(expected);
      return this.linked(expected, total, refreshed, dataLeft);
    });
  }

  /**
   * finish for a writer that publishes straight into the blob store (commitTo), its content's
   * digest `actual` known from the running hash: checked before anything is published, then one
   * rename into `blobs/` where commit then move took two, a lookup and an rmdir.
   */
  private async finishInto(
    writer: PublishingWriter,
    expected: ParsedDigest,
    actual: Digest,
    size: number | undefined,
  ): Promise<BlobInfo> {
    const total = writer.size;
    try {
      this.checkSize(total, size);
      this.checkBlob(expected, actual, total);
    } catch (error) {
      await writer.cancel().catch(() => undefined);
      await this.remove();
      throw error;
    }
    const { blobs } = this.context;
    const refreshed = performance.now();
    let link: Promise<{ error: unknown } | undefined> | undefined;
    try {
      await this.context.protection.refresh(expected);
      // The layer link is written while the blob is published, so that their syncs overlap (both
      // are durable before the answer), but after the refresh, as a collector's re-checks need
      // (docs/gc.md, "The argument" and "Crashes"). A link whose blob is not stored (yet, or after
      // a crash) reads as an unknown blob (LinkedBlobs.find), as distribution's collector leaves
      // links too.
      link = this.writeLink(expected).then(
        () => undefined,
        (error: unknown) => ({ error }),
      );
      await blobs.commitIfAbsent(expected, writer);
    } catch (error) {
      await link;
      // Nothing was published: keep what arrived, resumable (its digest is then read back).
      await this.keep(writer);
      throw error;
    }
    const failed = await link;
    if (failed !== undefined) throw failed.error;
    return this.linked(expected, total, refreshed, false);
  }

  /** The upload's layer link: the blob is in the repository. */
  private writeLink(expected: ParsedDigest): Promise<void> {
    return this.context.links.writeKnown(paths.layerLink(this.repository, expected), expected);
  }

  /** The end of finish once the blob is stored and linked: its protection, the upload gone. */
  private async linked(
    expected: ParsedDigest,
    total: number,
    refreshed: number,
    dataLeft: boolean,
  ): Promise<BlobInfo> {
    this.context.protection.stored(expected, refreshed);
    await this.remove(dataLeft);
    this.size = total;
    return { digest: expected.digest, size: total };
  }

  /** Runs `check`; when it throws, the upload is removed first. */
  private async removeUnless(check: () => void): Promise<void> {
    try {
      check();
    } catch (error) {
      await this.remove();
      throw error;
    }
  }

  /** SIZE_INVALID when the client said a size (`size`) the upload's `total` bytes are not. */
  private checkSize(total: number, size: number | undefined): void {
    if (size !== undefined && size !== total) {
      throw new RegistryError(
        RegistryErrorCode.SizeInvalid,
        `upload ${this.id} has ${total} bytes, the client said ${size}`,
        { expected: size, actual: total },
      );
    }
  }

  /** DIGEST_INVALID when the content's digest is not the client's; then the repository's quota. */
  private checkBlob(expected: ParsedDigest, actual: Digest, total: number): void {
    if (actual !== expected.digest) {
      throw new RegistryError(
        RegistryErrorCode.DigestInvalid,
        `upload ${this.id} has digest ${actual}, the client said ${expected.digest}`,
        { expected: expected.digest, actual },
      );
    }
    this.context.quotas.checkBlob(this.repository, total);
  }

  cancel(): Promise<void> {
    return this.context.queue.run(this.key, async () => {
      this.context.checkWritable();
      this.ended();
      try {
        await this.context.driver.delete(paths.upload(this.repository, this.id));
      } catch (error) {
        if (!isPathNotFound(error)) throw error;
        if (!this.unstarted) throw uploadUnknown(this.repository, this.id);
      }
    });
  }

  /** This process is done with the upload: its running hash goes, its id is unknown from now. */
  private ended(): void {
    this.context.hashStates.delete(this.key);
    this.context.endedUploads.set(this.key, true);
  }

  /**
   * Writes `startedat` for an upload that stored nothing yet, before its bytes are kept. Not
   * synced: after a machine crash that lost it, the upload is unknown (BLOB_UPLOAD_UNKNOWN) and the
   * client starts again.
   */
  private async markStarted(): Promise<void> {
    if (!this.unstarted) return;
    const { driver } = this.context;
    const path = paths.uploadStartedAt(this.repository, this.id);
    const bytes = Buffer.from(rfc3339(this.startedAt), "latin1");
    if (driver.putContentUnsynced !== undefined) await driver.putContentUnsynced(path, bytes);
    else await driver.putContent(path, bytes);
    this.unstarted = false;
    const state = this.context.hashStates.get(this.key);
    if (state !== undefined) state.unstarted = false;
  }

  /**
   * After a last chunk failed (the client went away, the commit failed): closes `writer` when it
   * is still open, keeping what arrived, and writes `startedat`, so that the upload can be found
   * and resumed. The failure itself is what the caller reports.
   */
  private async keep(writer?: FileWriter): Promise<void> {
    await writer?.close().catch(() => undefined);
    await this.markStarted().catch(() => undefined);
  }

  /**
   * Resumes the data's writer, or creates it when nothing was appended yet (`stageNear`: see
   * WriterOptions). RANGE_INVALID when the data is not the size this session holds (another replica
   * appended since it was resumed).
   */
  private async openWriter(options?: StreamOptions, stageNear?: string): Promise<FileWriter> {
    const path = paths.uploadData(this.repository, this.id);
    let writer: FileWriter;
    try {
      // At 0 bytes a missing data file means a new writer (below); the driver may say so at once.
      const newIfMissing = this.size === 0;
      writer = await this.context.driver.writer(path, true, {
        ...options,
        newIfMissing,
        stageNear,
      });
    } catch (error) {
      if (!isPathNotFound(error)) throw error;
      if (this.size !== 0) throw uploadUnknown(this.repository, this.id);
      return this.context.driver.writer(path, false, options);
    }
    if (writer.size !== this.size) {
      await writer.close();
      this.context.hashStates.delete(this.key);
      const expected = this.size;
      this.size = writer.size;
      throw new RegistryError(
        RegistryErrorCode.RangeInvalid,
        `upload ${this.id} is at offset ${writer.size}, not ${expected}: another request appended`,
        { expected, actual: writer.size },
      );
    }
    return writer;
  }

  /**
   * Streams `data` into `writer`, hashing it when the running hash covers the data before it, and
   * records the new size. When `data` fails, closes the writer (what arrived stays, resumable).
   */
  private async receive(
    writer: FileWriter,
    data: Readable | AsyncIterable<Uint8Array>,
  ): Promise<void> {
    let state = this.context.hashStates.get(this.key);
    if (state !== undefined && state.offset !== writer.size) {
      this.context.hashStates.delete(this.key);
      state = undefined;
    }
    // A failing backend must not destroy the request: the API still answers it with the error.
    const chunks =
      typeof (data as Readable).iterator === "function"
        ? (data as Readable).iterator({ destroyOnReturn: false })
        : data;
    try {
      for await (const chunk of chunks as AsyncIterable<Uint8Array>) {
        // The write goes to the backend first, so hashing overlaps its I/O.
        const written = writer.write(chunk);
        if (state !== undefined) {
          state.hash.update(chunk);
          state.offset += chunk.length;
        }
        await written;
      }
    } catch (error) {
      // The client went away or the backend failed: keep what arrived, resumable.
      await this.closeWriter(writer);
      this.settle(writer, state);
      throw error;
    }
    this.settle(writer, state);
  }

  /**
   * Closes an append's writer. A failing close (a write it flushed failed: a full disk, say) is the
   * append's failure; the driver keeps what it could, and as this process no longer knows how much,
   * the next request reads the size back from storage.
   */
  private async closeWriter(writer: FileWriter): Promise<void> {
    try {
      await writer.close();
    } catch (error) {
      this.context.hashStates.delete(this.key);
      throw error;
    }
  }

  /** Records the size after an append; a hash that does not cover exactly the data is dropped. */
  private settle(writer: FileWriter, state: HashState | undefined): void {
    this.size = writer.size;
    if (state !== undefined && state.offset !== writer.size)
      this.context.hashStates.delete(this.key);
  }

  /**
   * The data's writer, resumed for its completion; or the size of data an earlier completion
   * committed and did not get further with; or undefined when nothing was appended.
   */
  private async resumeData(dataPath: string): Promise<FileWriter | number | undefined> {
    try {
      return await this.context.driver.writer(dataPath, true);
    } catch (error) {
      if (!isPathNotFound(error)) throw error;
      // Committed by an earlier completion that did not get further: finish from there.
      const info = await unlessNotFound(this.context.driver.stat(dataPath));
      if (info !== undefined && !info.isDir) return info.size;
      if (this.size === 0) return undefined;
      throw uploadUnknown(this.repository, this.id);
    }
  }

  /**
   * The digest of the upload's first `size` bytes from the running hash, when it covers exactly
   * them (and the digest is sha256); undefined otherwise. The running hash is used up either way.
   */
  private runningDigest(algorithm: DigestAlgorithm, size: number): Digest | undefined {
    const state = this.context.hashStates.get(this.key);
    this.context.hashStates.delete(this.key);
    if (algorithm !== "sha256" || state === undefined || state.offset !== size) return undefined;
    return `sha256:${state.hash.digest("hex")}`;
  }

  /**
   * The digest of the upload's `size` bytes (undefined: no data file, nothing appended): from the
   * running hash when it covers exactly them, else read back. The running hash is used up either way.
   */
  private async digestOf(
    algorithm: DigestAlgorithm,
    dataPath: string,
    size: number | undefined,
  ): Promise<Digest> {
    const running = this.runningDigest(algorithm, size ?? 0);
    if (running !== undefined) return running;
    if (size === undefined) return digestOf(new Uint8Array(0), algorithm);
    return (await digestOfStream(await this.context.driver.reader(dataPath, 0), algorithm)).digest;
  }

  /**
   * Removes the upload. Without data left, only `startedat` is (when it was written): deleting
   * that file (the driver then prunes the emptied directories) takes fewer calls than deleting the
   * directory.
   */
  private async remove(dataLeft = true): Promise<void> {
    this.ended();
    const { driver } = this.context;
    if (dataLeft) await deleteIfPresent(driver, paths.upload(this.repository, this.id));
    else if (!this.unstarted) {
      await deleteIfPresent(driver, paths.uploadStartedAt(this.repository, this.id));
    }
  }
}
