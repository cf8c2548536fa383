// The S3 calls behind a resumable writer (see writer.ts): the multipart uploads in progress for a
// key, their parts, and the tail object that holds a closed writer's trailing bytes.

import type { S3Client } from "@aws-sdk/client-s3";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import type { StoragePath } from "../driver.js";
import { isMissingKey, toDriverError } from "./errors.js";

/** Appended to a key to name the object holding a closed writer's trailing bytes. */
export const TAIL_SUFFIX = "~tail";

/** Metadata names on a tail object (sent as x-amz-meta-*). */
export const TAIL_UPLOAD_ID = "berth-upload-id";
export const TAIL_PARTS = "berth-parts";

/** What a writer needs from the driver: the client and the per-object request settings. */
export interface WriterContext {
  client: S3Client;
  bucket: string;
  chunkSize: number;
  /** Settings sent with every object or upload created (storage class, ACL, encryption). */
  objectSettings: Record<string, unknown>;
  /** The driver's own operations that `commitTo` publishes with. */
  objects: DriverObjects;
  /** Set once the store answered a conditional PutObject with 501: it is not sent again. */
  conditionalPuts: { refused: boolean };
}

/** The driver's operations on whole objects, for a writer publishing at another path. */
export interface DriverObjects {
  /** The key of a driver path. */
  keyOf(path: StoragePath): string;
  /** Whether an object is stored at exactly `path` (a HeadObject). */
  exists(path: StoragePath): Promise<boolean>;
  /** The driver's `move` of an object of `size` bytes: a server-side copy, then the deletion. */
  move(source: StoragePath, destination: StoragePath, size: number): Promise<void>;
  /** Deletes the object at exactly `path` (nothing below it); a missing one is no error. */
  remove(path: StoragePath): Promise<void>;
}

/**
 * A PutObject of `content` as the whole object at `key`, with the configured object settings;
 * `extra`: a condition (`If-None-Match: *`) or metadata (a tail's).
 */
export function putObjectCommand(
  context: Pick<WriterContext, "bucket" | "objectSettings">,
  key: string,
  content: Uint8Array,
  extra: { IfNoneMatch?: string; Metadata?: Record<string, string> } = {},
): PutObjectCommand {
  return new PutObjectCommand({
    Bucket: context.bucket,
    Key: key,
    Body: content,
    ContentLength: content.length,
    ContentType: "application/octet-stream",
    ...extra,
    ...context.objectSettings,
  });
}

export interface UploadedPart {
  PartNumber: number;
  ETag: string;
  Size: number;
}

/** Upload ids of the multipart uploads in progress for exactly `key`, oldest first. */
export async function inProgressUploads(
  context: WriterContext,
  path: StoragePath,
  key: string,
): Promise<string[]> {
  const { client, bucket } = context;
  const found: { id: string; initiated: number }[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    let page;
    try {
      page = await client.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          Prefix: key,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
    } catch (error) {
      throw toDriverError(error, { operation: "ListMultipartUploads", bucket, key, path });
    }
    for (const upload of page.Uploads ?? []) {
      if (upload.Key === key && upload.UploadId !== undefined) {
        found.push({ id: upload.UploadId, initiated: upload.Initiated?.getTime() ?? 0 });
      }
    }
    // Listed in key order, so once past `key` nothing more can match.
    const pastKey = (page.Uploads ?? []).some((upload) => (upload.Key ?? "") > key);
    keyMarker = page.IsTruncated && !pastKey ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.NextUploadIdMarker;
  } while (keyMarker !== undefined);
  return found.sort((a, b) => a.initiated - b.initiated).map((upload) => upload.id);
}

/** The parts of upload `uploadId`, or undefined when there is no such upload (aborted). */
export async function listParts(
  context: WriterContext,
  path: StoragePath,
  key: string,
  uploadId: string,
): Promise<UploadedPart[] | undefined> {
  const { client, bucket } = context;
  const parts: UploadedPart[] = [];
  let marker: string | undefined;
  do {
    let page;
    try {
      page = await client.send(
        new ListPartsCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumberMarker: marker,
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name === "NoSuchUpload") return undefined;
      throw toDriverError(error, { operation: "ListParts", bucket, key, path });
    }
    for (const part of page.Parts ?? []) {
      parts.push({ PartNumber: part.PartNumber ?? 0, ETag: part.ETag ?? "", Size: part.Size ?? 0 });
    }
    marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
  } while (marker !== undefined);
  parts.sort((a, b) => a.PartNumber - b.PartNumber);
  // Parts are numbered 1, 2, ... by the writers; a gap means a part upload that never finished
  // after a later one did, which Berth's sequential writer cannot produce. Keep the prefix that is
  // whole, so no byte after a gap is ever counted.
  const contiguous = parts.findIndex((part, index) => part.PartNumber !== index + 1);
  return contiguous === -1 ? parts : parts.slice(0, contiguous);
}

export async function abortUpload(
  context: WriterContext,
  path: StoragePath,
  key: string,
  uploadId: string,
): Promise<void> {
  const { client, bucket } = context;
  try {
    await client.send(
      new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }),
    );
  } catch (error) {
    if ((error as { name?: string }).name === "NoSuchUpload") return;
    throw toDriverError(error, { operation: "AbortMultipartUpload", bucket, key, path });
  }
}

export async function readTail(
  context: WriterContext,
  path: StoragePath,
  key: string,
): Promise<{ bytes: Buffer; uploadId: string; parts: number } | undefined> {
  const { client, bucket } = context;
  const tailKey = key + TAIL_SUFFIX;
  try {
    const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: tailKey }));
    const bytes = Buffer.from((await answer.Body?.transformToByteArray()) ?? new Uint8Array());
    const metadata = answer.Metadata ?? {};
    return {
      bytes,
      uploadId: metadata[TAIL_UPLOAD_ID] ?? "",
      parts: Number(metadata[TAIL_PARTS] ?? NaN),
    };
  } catch (error) {
    if (isMissingKey(error)) return undefined;
    throw toDriverError(error, { operation: "GetObject", bucket, key: tailKey, path });
  }
}

export async function deleteTail(
  context: WriterContext,
  path: StoragePath,
  key: string,
): Promise<void> {
  const { client, bucket } = context;
  const tailKey = key + TAIL_SUFFIX;
  try {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: tailKey }));
  } catch (error) {
    if (isMissingKey(error)) return;
    throw toDriverError(error, { operation: "DeleteObject", bucket, key: tailKey, path });
  }
}
