// Turning AWS SDK errors into the contract's errors: a missing key is PathNotFoundError, anything
// else a BackendError whose message names the S3 operation, the bucket and the key. Throttling and
// 5xx answers never get here until the SDK's retries (with backoff) are used up.

import { BackendError, PathNotFoundError, type StoragePath } from "../driver.js";
import { DRIVER_NAME } from "./parameters.js";

interface SdkError {
  name?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status of an SDK error, if it got an answer. */
export function httpStatus(error: unknown): number | undefined {
  return (error as SdkError)?.$metadata?.httpStatusCode;
}

/** True when S3 answered that the key (not the bucket, not an upload) does not exist. */
export function isMissingKey(error: unknown): boolean {
  const name = (error as SdkError)?.name;
  if (name === "NoSuchKey" || name === "NotFound") return true;
  return httpStatus(error) === 404 && name !== "NoSuchBucket" && name !== "NoSuchUpload";
}

/** Where an S3 call was aimed, for error messages. */
export interface S3Target {
  operation: string;
  bucket: string;
  key?: string;
  path?: StoragePath;
}

/**
 * The contract's error for a failed S3 call: PathNotFoundError for a missing key when `path` is
 * given, else a BackendError naming the operation, bucket and key, with the SDK error as cause.
 */
export function toDriverError(error: unknown, target: S3Target): Error {
  if (target.path !== undefined && isMissingKey(error)) {
    return new PathNotFoundError(DRIVER_NAME, target.path, { cause: error });
  }
  const where =
    target.key === undefined ? `s3://${target.bucket}` : `s3://${target.bucket}/${target.key}`;
  const sdk = error as SdkError;
  const status = httpStatus(error);
  const code = sdk?.Code ?? sdk?.name;
  // Without an error body (HEAD, some RGW answers) the SDK's message is only "UnknownError".
  const informative = sdk?.message && sdk.message !== code && sdk.message !== "UnknownError";
  const text = [code, informative ? sdk.message : undefined].filter(Boolean).join(": ") || "failed";
  const cause = new Error(status === undefined ? text : `${text} (HTTP ${status})`, {
    cause: error,
  });
  return new BackendError(DRIVER_NAME, `${target.operation} ${where}`, target.path, { cause });
}
