// Uploads: `_uploads/<id>/data` grows through a driver FileWriter that is resumed and closed on
// every append, so an upload survives the client, the process and the replica that started it.
//
// The bytes are hashed (sha256) as they stream past. A FileWriter's content is not readable before
// commit and a node:crypto Hash cannot be serialized, so the running hash lives in process memory,
// keyed by upload and tagged with the offset it covers. At completion it is used only when that
// offset equals the data's size; otherwise (a restart, another replica appended, a sha512 digest)
// the committed data is read back and hashed once.

import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { FileWriter } from "../driver/index.js";
import { deleteIfPresent, isPathNotFound, unlessNotFound } from "./blobstore.js";
import type { StorageContext, UploadHashState as HashState } from "./context.js";
import { createDigester, digestOfStream, parseDigest } from "./digest.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { paths } from "./paths.js";
import type { BlobInfo, Digest, UploadSession } from "./types.js";

/** What uploads share across sessions: storage, the hash states and the per-upload queue. */
export type UploadContext = Pick<
  StorageContext,
  "driver" | "blobs" | "links" | "hashStates" | "queue" | "checkWritable"
>;

const UPLOAD_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function uploadUnknown(repository: string, id: string): RegistryError {
  return new RegistryError(
    RegistryErrorCode.BlobUploadUnknown,
    `no upload ${JSON.stringify(id)} in repository ${repository}`,
    { repository, uuid: id },
  );
}

/** RFC 3339 in UTC without fractions, as distribution writes `startedat`. */
function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Starts a new upload in `repository`. */
export async function startUpload(
  context: UploadContext,
  repository: string,
): Promise<UploadSession> {
  context.checkWritable();
  const id = randomUUID();
  const startedAt = new Date();
  await context.driver.putContent(
    paths.uploadStartedAt(repository, id),
    Buffer.from(rfc3339(startedAt), "utf8"),
  );
  // An empty data file that later appends resume: a zero-length upload can be finished too.
  const writer = await context.driver.writer(paths.uploadData(repository, id), false);
  await writer.close();
  context.hashStates.set(`${repository}/${id}`, { offset: 0, hash: createDigester("sha256") });
  return new Upload(context, repository, id, new Date(rfc3339(startedAt)), 0);
}

/** Resumes upload `id` of `repository` from storage; BLOB_UPLOAD_UNKNOWN if there is none. */
export async function resumeUpload(
  context: UploadContext,
  repository: string,
  id: string,
): Promise<UploadSession> {
  if (!UPLOAD_ID.test(id)) throw uploadUnknown(repository, id);
  return context.queue.run(`${repository}/${id}`, async () => {
    const startedAtBytes = await unlessNotFound(
      context.driver.getContent(paths.uploadStartedAt(repository, id)),
    );
    if (startedAtBytes === undefined) throw uploadUnknown(repository, id);
    const startedAt = new Date(Buffer.from(startedAtBytes).toString("utf8").trim());
    const size = await currentSize(context, repository, id);
    return new Upload(context, repository, id, startedAt, size);
  });
}

/** The upload's size: resumed writers report it (closed data may not be readable). */
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
    if (info === undefined) throw uploadUnknown(repository, id);
    return info.size;
  }
  const size = writer.size;
  await writer.close();
  return size;
}

class Upload implements UploadSession {
  private readonly key: string;

  constructor(
    private readonly context: UploadContext,
    readonly repository: string,
    readonly id: string,
    readonly startedAt: Date,
    public size: number,
  ) {
    this.key = `${repository}/${id}`;
  }

  append(data: Readable | AsyncIterable<Uint8Array>): Promise<number> {
    return this.context.queue.run(this.key, async () => {
      this.context.checkWritable();
      const writer = await this.openWriter();
      let state = this.context.hashStates.get(this.key);
      if (state !== undefined && state.offset !== writer.size) {
        this.context.hashStates.delete(this.key);
        state = undefined;
      }
      try {
        for await (const chunk of data as AsyncIterable<Uint8Array>) {
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
        await writer.close().catch(() => undefined);
        this.settle(writer, state);
        throw error;
      }
      await writer.close();
      this.settle(writer, state);
      return this.size;
    });
  }

  finish(digest: Digest, size?: number): Promise<BlobInfo> {
    return this.context.queue.run(this.key, async () => {
      this.context.checkWritable();
      const expected = parseDigest(digest);
      const { driver, blobs, links } = this.context;
      const dataPath = paths.uploadData(this.repository, this.id);
      const total = await this.commitData(dataPath);

      if (size !== undefined && size !== total) {
        await this.remove();
        throw new RegistryError(
          RegistryErrorCode.SizeInvalid,
          `upload ${this.id} has ${total} bytes, the client said ${size}`,
          { expected: size, actual: total },
        );
      }
      const state = this.context.hashStates.get(this.key);
      const actual =
        expected.algorithm === "sha256" && state !== undefined && state.offset === total
          ? `sha256:${state.hash.digest("hex")}`
          : (await digestOfStream(await driver.reader(dataPath, 0), expected.algorithm)).digest;
      if (actual !== expected.digest) {
        await this.remove();
        throw new RegistryError(
          RegistryErrorCode.DigestInvalid,
          `upload ${this.id} has digest ${actual}, the client said ${expected.digest}`,
          { expected: expected.digest, actual },
        );
      }

      if ((await blobs.stat(expected)) === undefined) {
        await blobs.adopt(expected, dataPath, total);
      }
      await links.write(paths.layerLink(this.repository, expected), expected);
      await this.remove();
      this.size = total;
      return { digest: expected.digest, size: total };
    });
  }

  cancel(): Promise<void> {
    return this.context.queue.run(this.key, async () => {
      this.context.checkWritable();
      this.context.hashStates.delete(this.key);
      try {
        await this.context.driver.delete(paths.upload(this.repository, this.id));
      } catch (error) {
        if (isPathNotFound(error)) throw uploadUnknown(this.repository, this.id);
        throw error;
      }
    });
  }

  private async openWriter(): Promise<FileWriter> {
    try {
      return await this.context.driver.writer(paths.uploadData(this.repository, this.id), true);
    } catch (error) {
      if (isPathNotFound(error)) throw uploadUnknown(this.repository, this.id);
      throw error;
    }
  }

  /** Records the size after an append; a hash that does not cover exactly the data is dropped. */
  private settle(writer: FileWriter, state: HashState | undefined): void {
    this.size = writer.size;
    if (state !== undefined && state.offset !== writer.size)
      this.context.hashStates.delete(this.key);
  }

  /** Publishes the data so it can be read (and moved); returns its size. */
  private async commitData(dataPath: string): Promise<number> {
    let writer: FileWriter;
    try {
      writer = await this.context.driver.writer(dataPath, true);
    } catch (error) {
      if (!isPathNotFound(error)) throw error;
      // Committed by an earlier completion that did not get further: finish from there.
      const info = await unlessNotFound(this.context.driver.stat(dataPath));
      if (info === undefined || info.isDir) throw uploadUnknown(this.repository, this.id);
      return info.size;
    }
    const total = writer.size;
    await writer.commit();
    return total;
  }

  private async remove(): Promise<void> {
    this.context.hashStates.delete(this.key);
    await deleteIfPresent(this.context.driver, paths.upload(this.repository, this.id));
  }
}
