// The error side of the HTTP API: the one union of error codes it sends, the table from code to
// HTTP status (checked complete by the compiler), and the writer of the spec's error envelope
// `{"errors":[{"code","message","detail"}]}`. Storage errors arrive as RegistryError values whose
// code is one of these (compiler-checked in writeError); anything else is an internal error, logged here
// and answered with a generic 500 so no backend detail (paths, credentials in URLs) reaches a client.

import type { ServerResponse } from "node:http";
import { RegistryError, isStorageFull } from "../storage/index.js";

/**
 * Every error code the API sends: the OCI Distribution Spec's, the ones distribution adds
 * (MANIFEST_UNVERIFIED, TAG_INVALID, RANGE_INVALID, PAGINATION_NUMBER_INVALID) and UNKNOWN for an
 * internal error.
 */
export type ErrorCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "MANIFEST_UNVERIFIED"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "TAG_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "TOOMANYREQUESTS"
  | "RANGE_INVALID"
  | "PAGINATION_NUMBER_INVALID"
  | "UNKNOWN";

/** HTTP status of each error code, as distribution and the OCI spec assign them. */
const STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  MANIFEST_UNVERIFIED: 400,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  UNKNOWN: 500,
} as const satisfies Record<ErrorCode, number>;

/** The HTTP status for an error code. */
export function errorStatus(code: ErrorCode): number {
  return STATUS[code];
}

/** An error the API layer itself raises (a bad header, an unknown route), with its code and status. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Headers to send with the error response (Range on a 416, Allow on a 405). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { status?: number; detail?: unknown; headers?: Record<string, string> },
  ) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = options?.status ?? errorStatus(code);
    this.detail = options?.detail;
    this.headers = options?.headers;
  }
}

/** The logger the API reports internal errors to: pino's shape, only the levels used here. */
export interface ApiLogger {
  error(object: object, message?: string): void;
  warn(object: object, message?: string): void;
}

/** The JSON body of an error response. */
export function errorBody(code: ErrorCode, message: string, detail?: unknown): string {
  const entry: { code: ErrorCode; message: string; detail?: unknown } = { code, message };
  if (detail !== undefined) entry.detail = detail;
  return JSON.stringify({ errors: [entry] });
}

/**
 * Writes the error envelope for `error` on `res`: RegistryError and ApiError with their own code,
 * anything else as a 500 with a generic message (the real error goes to `logger`). HEAD responses
 * carry the headers only.
 */
export function writeError(
  res: ServerResponse,
  error: unknown,
  isHead: boolean,
  logger: ApiLogger | undefined,
): void {
  let code: ErrorCode;
  let message: string;
  let detail: unknown;
  let status: number;
  let headers: Record<string, string> | undefined;
  if (error instanceof ApiError) {
    ({ code, message, detail, status, headers } = error);
  } else if (error instanceof RegistryError) {
    // `code` is an ErrorCode: this compiles only while every RegistryErrorCode is one.
    ({ code, message, detail } = error);
    status = errorStatus(code);
  } else if (isStorageFull(error)) {
    // The spec's codes are fixed, so UNKNOWN; the status and message say why (docs/reliability.md).
    code = "UNKNOWN";
    message = "storage is full: the registry cannot store more data now";
    status = 507;
    logger?.error({ err: error }, "storage is full");
  } else {
    code = "UNKNOWN";
    message = "internal server error";
    status = 500;
    logger?.error({ err: error }, "request failed");
  }
  const body = errorBody(code, message, detail);
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(isHead ? undefined : body);
}
