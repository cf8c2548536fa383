// Blob upload endpoints: POST `/v2/<name>/blobs/uploads/` (a new session, a monolithic upload with
// `digest`, or a cross-repository mount), and on `/v2/<name>/blobs/uploads/<id>`: PATCH (a chunk,
// streamed), PUT (finish, with an optional last chunk), GET (status) and DELETE (cancel). Request
// bodies go straight into UploadSession.append, which reads the IncomingMessage with backpressure;
// if the client goes away mid-chunk, the storage layer keeps what arrived and the upload stays
// resumable at its new offset.

import type { IncomingMessage } from "node:http";
import {
  isValidDigest,
  isValidUploadId,
  RegistryError,
  type BlobInfo,
  type RepositoryBlobs,
  type UploadSession,
} from "../storage/index.js";
import type { ApiContext, ApiRequest } from "./context.js";
import { clientSignal, sendEmpty } from "./context.js";
import { ApiError } from "./errors.js";
import { blobEvent } from "./events.js";
import {
  checkDigest,
  contentLength,
  hasBody,
  parseContentRange,
  uploadRange,
  type ByteRange,
} from "./protocol.js";

function uploadLocation(context: ApiContext, name: string, id: string): string {
  return `${context.prefix}/v2/${name}/blobs/uploads/${id}`;
}

function blobLocation(context: ApiContext, name: string, digest: string): string {
  return `${context.prefix}/v2/${name}/blobs/${digest}`;
}

/** The headers describing an upload session's state. */
function sessionHeaders(
  context: ApiContext,
  session: UploadSession,
  size: number,
): Record<string, string> {
  return {
    Location: uploadLocation(context, session.repository, session.id),
    Range: uploadRange(size),
    "Docker-Upload-UUID": session.id,
  };
}

/** POST: mount, monolithic upload, or a new session. */
export async function startUpload(context: ApiContext, request: ApiRequest): Promise<void> {
  const { res, route, query } = request;
  const blobs = context.storage.repository(route.name).blobs;

  const mount = query?.get("mount");
  if (mount) {
    // Without `from` the registry may find the blob itself (automatic content discovery, which
    // the conformance suite's newer runner expects); when the blob is not there to mount, the spec
    // has the registry start an upload.
    // With access rules, mounting needs pull on the source; without it this is a plain upload, as
    // the spec allows, so the caller learns nothing about repositories it may not read.
    const from = query!.get("from") || undefined;
    const { caller } = request;
    const allowed = from === undefined ? caller.unrestricted : caller.may(from, "pull");
    const mounted = allowed && isValidDigest(mount) ? await tryMount(blobs, from, mount) : null;
    if (mounted !== null) {
      sendEmpty(res, 201, {
        Location: blobLocation(context, route.name, mount),
        "Docker-Content-Digest": mount,
      });
      blobEvent(context, request, "mount", mounted, from);
      return;
    }
  } else {
    const digest = query?.get("digest");
    if (digest !== null && digest !== undefined) {
      await uploadMonolithic(context, request, blobs, digest);
      return;
    }
  }

  const session = await blobs.startUpload();
  // A body sent without `digest` has no meaning; Node discards what is left unread.
  sendEmpty(res, 202, sessionHeaders(context, session, 0));
}

/**
 * Mounts `digest` from repository `from` (from anywhere in the registry when undefined); null
 * when that is not possible (not there, bad name).
 */
async function tryMount(
  blobs: RepositoryBlobs,
  from: string | undefined,
  digest: string,
): Promise<BlobInfo | null> {
  try {
    return await blobs.mount(from, digest);
  } catch (error) {
    if (error instanceof RegistryError) return null;
    throw error;
  }
}

/** POST with `digest`: the whole blob in the request body, finished at once (201). */
async function uploadMonolithic(
  context: ApiContext,
  request: ApiRequest,
  blobs: RepositoryBlobs,
  digest: string,
): Promise<void> {
  checkDigest(digest);
  const session = await blobs.startUpload();
  let info;
  try {
    const body = hasBody(request.req) ? request.req : undefined;
    info = await session.finish(digest, contentLength(request.req), body, {
      signal: clientSignal(request),
    });
  } catch (error) {
    // The client never learnt this upload's id, so nothing can resume it: drop it.
    await session.cancel().catch(() => undefined);
    throw error;
  }
  sendEmpty(request.res, 201, {
    Location: blobLocation(context, request.route.name, info.digest),
    "Docker-Content-Digest": info.digest,
  });
  blobEvent(context, request, "push", info);
}

/** The upload named by the route; BLOB_UPLOAD_UNKNOWN when there is none. */
async function resume(context: ApiContext, request: ApiRequest): Promise<UploadSession> {
  const id = request.route.argument;
  const blobs = context.storage.repository(request.route.name).blobs;
  if (!isValidUploadId(id)) {
    throw new ApiError("BLOB_UPLOAD_UNKNOWN", `blob upload unknown: ${JSON.stringify(id)}`);
  }
  return blobs.resumeUpload(id);
}

/**
 * Checks a chunk's Content-Range against the session: it must start where the upload ends (else
 * 416 with the upload's current Range, so the client can resume from there) and, when the request
 * says its length, be exactly that long.
 */
function checkChunk(
  context: ApiContext,
  session: UploadSession,
  range: ByteRange,
  req: IncomingMessage,
): void {
  if (range.start !== session.size || range.end < range.start) {
    throw new ApiError(
      "RANGE_INVALID",
      `chunk ${range.start}-${range.end} does not continue the upload at offset ${session.size}`,
      { headers: sessionHeaders(context, session, session.size) },
    );
  }
  const length = contentLength(req);
  if (length !== undefined && length !== range.end - range.start + 1) {
    throw new ApiError(
      "SIZE_INVALID",
      `Content-Length ${length} does not match Content-Range ${range.start}-${range.end}`,
    );
  }
}

/** PATCH: appends the body (streamed, or a chunk with Content-Range) and answers 202. */
export async function patchUpload(context: ApiContext, request: ApiRequest): Promise<void> {
  const { req, res } = request;
  const session = await resume(context, request);
  const range = parseContentRange(req.headers["content-range"]);
  if (range !== null) checkChunk(context, session, range, req);
  const size = hasBody(req)
    ? await session.append(req, { signal: clientSignal(request) })
    : session.size;
  sendEmpty(res, 202, sessionHeaders(context, session, size));
}

/** PUT with `digest`: appends an optional last chunk, completes the upload (201). */
export async function finishUpload(context: ApiContext, request: ApiRequest): Promise<void> {
  const { req, res, route, query } = request;
  const session = await resume(context, request);
  const digest = query?.get("digest");
  if (!digest) throw new ApiError("DIGEST_INVALID", "digest missing: PUT needs ?digest=");
  checkDigest(digest);
  const range = parseContentRange(req.headers["content-range"]);
  if (range !== null) checkChunk(context, session, range, req);
  const info = await session.finish(digest, undefined, hasBody(req) ? req : undefined, {
    signal: clientSignal(request),
  });
  sendEmpty(res, 201, {
    Location: blobLocation(context, route.name, info.digest),
    "Docker-Content-Digest": info.digest,
  });
  blobEvent(context, request, "push", info);
}

/** GET: the upload's progress (204 with Range). */
export async function uploadStatus(context: ApiContext, request: ApiRequest): Promise<void> {
  const session = await resume(context, request);
  sendEmpty(request.res, 204, sessionHeaders(context, session, session.size));
}

/** DELETE: cancels the upload and removes what it wrote (204). */
export async function cancelUpload(context: ApiContext, request: ApiRequest): Promise<void> {
  const session = await resume(context, request);
  await session.cancel();
  sendEmpty(request.res, 204, {});
}
