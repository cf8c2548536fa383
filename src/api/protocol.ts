// The pieces of the wire protocol that need no storage: parsers for the headers the API reads
// (Range, Content-Range, Accept) and the pagination query, and the digest check with the API's
// error. Pure functions, unit-tested on their own. The grammars of names, tags, digests and upload
// ids are the storage layer's (src/storage/index.ts), used here and in the handlers.

import type { IncomingMessage } from "node:http";
import { isValidDigest } from "../storage/index.js";
import { ApiError } from "./errors.js";

/** A manifest reference is a digest when it has an algorithm separator; tags cannot contain `:`. */
export function isDigestReference(reference: string): boolean {
  return reference.includes(":");
}

/** Throws DIGEST_INVALID unless `digest` is well formed. */
export function checkDigest(digest: string): void {
  if (!isValidDigest(digest)) {
    throw new ApiError("DIGEST_INVALID", `invalid digest: ${JSON.stringify(digest)}`);
  }
}

/** A byte range of a blob, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a request `Range` header against a blob of `size` bytes: `bytes=a-b`, `bytes=a-` or
 * `bytes=-n`. Returns the clamped range; null when the header should be ignored (absent, another
 * unit, malformed, or several ranges — RFC 9110 lets a server answer those with the whole content);
 * throws RANGE_INVALID (416) when it ends before it starts or no byte of it is in the blob.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return null;
  const [, first, last] = match as unknown as [string, string, string];
  let start: number;
  let end: number;
  if (first === "") {
    if (last === "") return null;
    const suffix = Number(last);
    if (suffix === 0) throw unsatisfiable(header, size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
    // A last byte before the first makes the range invalid: refused with 416, as distribution
    // (Go's http.ServeContent) does and the conformance suite's range tests expect.
    if (last !== "" && Number(last) < start) throw unsatisfiable(header, size);
  }
  if (start >= size) throw unsatisfiable(header, size);
  return { start, end };
}

function unsatisfiable(header: string, size: number): ApiError {
  return new ApiError("RANGE_INVALID", `range not satisfiable: ${header}`, {
    headers: { "Content-Range": `bytes */${size}` },
  });
}

/**
 * Parses an upload chunk's `Content-Range: a-b` (distribution's form; `bytes a-b/...` as sent by
 * some clients is accepted too). Null when absent; BLOB_UPLOAD_INVALID when malformed.
 */
export function parseContentRange(header: string | undefined): ByteRange | null {
  if (header === undefined || header === "") return null;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (match === null) {
    throw new ApiError("BLOB_UPLOAD_INVALID", `invalid Content-Range: ${JSON.stringify(header)}`);
  }
  return { start: Number(match[1]), end: Number(match[2]) };
}

/** The `Range` header value describing an upload of `size` bytes: `0-<last byte>`, `0-0` when empty. */
export function uploadRange(size: number): string {
  return `0-${size > 0 ? size - 1 : 0}`;
}

/** The media types listed in the request's Accept headers, parameters and q-values dropped. */
export function acceptedMediaTypes(req: IncomingMessage): Set<string> {
  const types = new Set<string>();
  // Node joins repeated Accept headers with ", ", so one split covers both forms.
  const header = req.headers.accept;
  if (header === undefined) return types;
  for (const part of header.split(",")) {
    const semicolon = part.indexOf(";");
    const type = (semicolon === -1 ? part : part.slice(0, semicolon)).trim().toLowerCase();
    if (type !== "") types.add(type);
  }
  return types;
}

/** Pagination of the tags list and the catalog: at most `n` entries after `last`. */
export interface Page {
  n: number | undefined;
  last: string | undefined;
}

/** Reads `n` and `last` from a query; PAGINATION_NUMBER_INVALID when `n` is not a whole number. */
export function parsePage(query: URLSearchParams | null): Page {
  const n = query?.get("n") ?? null;
  const last = query?.get("last") ?? undefined;
  if (n === null || n === "") return { n: undefined, last: last || undefined };
  if (!/^\d+$/.test(n)) {
    throw new ApiError(
      "PAGINATION_NUMBER_INVALID",
      `invalid number of results requested: ${JSON.stringify(n)}`,
    );
  }
  return { n: Number(n), last: last || undefined };
}

/** True when the request carries a body: a non-zero Content-Length or a chunked transfer. */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return length !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}

/** The request's Content-Length as a number; undefined when absent. */
export function contentLength(req: IncomingMessage): number | undefined {
  const length = req.headers["content-length"];
  return length === undefined ? undefined : Number(length);
}

/**
 * Reads the whole request body, refusing more than `limit` bytes with SIZE_INVALID (checked
 * against Content-Length before reading, and while reading a chunked body). On refusal the request
 * is paused, not destroyed, so the error response still reaches the client.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      stop();
      req.pause();
      reject(tooLarge(limit));
    };
    const onEnd = (): void => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      stop();
      reject(error);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

function tooLarge(limit: number): ApiError {
  return new ApiError("SIZE_INVALID", `manifest body exceeds ${limit} bytes`, {
    // The rest of the body is not read; closing the connection saves receiving it.
    headers: { Connection: "close" },
  });
}
