// Blob endpoints: GET and HEAD `/v2/<name>/blobs/<digest>` (whole or a byte range, or a 307 to the
// driver's URL) and DELETE. The bytes are copied from storage to the socket with backpressure
// (through the driver's copyTo where it has one); a client that goes away ends the copy.

import type { ApiContext, ApiRequest } from "./context.js";
import { clientSignal, sendEmpty } from "./context.js";
import { checkDigest, parseRange } from "./protocol.js";
import { blobEvent, deleteEvent } from "./events.js";
import { DestinationClosedError } from "../storage/index.js";

/** Blobs are immutable: a client may cache them for a year (as distribution tells it). */
const CACHE_CONTROL = "max-age=31536000";

/** GET and HEAD of a blob. */
export async function getBlob(context: ApiContext, request: ApiRequest): Promise<void> {
  const { req, res, route } = request;
  const digest = route.argument;
  checkDigest(digest);
  const blobs = context.storage.repository(route.name).blobs;
  if (context.redirect) {
    // redirectURL answers BLOB_UNKNOWN for a blob not in the repository, as stat does.
    const url = await blobs.redirectURL(digest, request.isHead ? "HEAD" : "GET");
    if (url !== null) {
      sendEmpty(res, 307, { Location: url, "Docker-Content-Digest": digest });
      blobEvent(context, request, "pull", { digest });
      return;
    }
    context.redirect = false;
  }
  // From the storage layer's memory when it knows the answer: no promise on a cached HEAD.
  const info = blobs.statCached?.(digest) ?? (await blobs.stat(digest));

  const etag = `"${digest}"`;
  const headers: Record<string, string | number> = {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest,
    "Accept-Ranges": "bytes",
    ETag: etag,
    "Cache-Control": CACHE_CONTROL,
  };
  if (matchesEtag(req.headers["if-none-match"], etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }

  const range = info.size > 0 ? parseRange(req.headers.range, info.size) : null;
  if (range === null) {
    headers["Content-Length"] = info.size;
    res.writeHead(200, headers);
  } else {
    headers["Content-Length"] = range.end - range.start + 1;
    headers["Content-Range"] = `bytes ${range.start}-${range.end}/${info.size}`;
    res.writeHead(206, headers);
  }
  if (request.isHead || info.size === 0) {
    res.end();
    blobEvent(context, request, "pull", info);
    return;
  }

  try {
    const start = range?.start ?? 0;
    const length = range === null ? info.size : range.end - start + 1;
    await blobs.copyTo(digest, res, start, length, { signal: clientSignal(request) });
    res.end();
    blobEvent(context, request, "pull", info);
  } catch (error) {
    // The headers are out: all that can be done is to cut the response short, which the client
    // sees as a body shorter than Content-Length. A client that left is not an error.
    const clientGone = isClientGone(error, res);
    if (!res.destroyed) res.destroy();
    if (!clientGone) request.info.log?.error({ err: error, digest }, "blob read failed");
  }
}

function isClientGone(error: unknown, res: ApiRequest["res"]): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof DestinationClosedError || code === "ECONNRESET" || res.destroyed;
}

/** True when If-None-Match names `etag` (quoted or not, or `*`). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  for (const candidate of header.split(",")) {
    const value = candidate.trim();
    if (value === etag || value === "*" || `"${value}"` === etag || value === `W/${etag}`)
      return true;
  }
  return false;
}

/** DELETE of a blob: unlinks it from the repository (202), when deleting is enabled. */
export async function deleteBlob(context: ApiContext, request: ApiRequest): Promise<void> {
  const digest = request.route.argument;
  checkDigest(digest);
  await context.storage.repository(request.route.name).blobs.delete(digest);
  sendEmpty(request.res, 202, { "Docker-Content-Digest": digest });
  deleteEvent(context, request, { digest });
}
