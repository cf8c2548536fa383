// How Azure Blob service failures become the contract's errors: a missing blob is
// PathNotFoundError, anything else a BackendError naming the operation and path.

import { RestError } from "@azure/storage-blob";
import {
  BackendError,
  PathNotFoundError,
  StorageDriverError,
  type StoragePath,
} from "../driver.js";
import { DRIVER_NAME } from "./parameters.js";

/** The service's error code (`BlobNotFound`, `ContainerNotFound`, ...) if `error` carries one. */
export function serviceErrorCode(error: unknown): string | undefined {
  return error instanceof RestError ? error.code : undefined;
}

/** The HTTP status of a service error, if `error` is one. */
export function serviceStatus(error: unknown): number | undefined {
  return error instanceof RestError ? error.statusCode : undefined;
}

/**
 * The contract's error for `error`, raised by `operation` on `path`. Any 404 means "nothing
 * there", including a container that does not exist yet: writes create it (see AzureDriver), so
 * until then the store is simply empty.
 */
export function translateError(error: unknown, operation: string, path: StoragePath): Error {
  if (error instanceof StorageDriverError) return error;
  if (serviceStatus(error) === 404)
    return new PathNotFoundError(DRIVER_NAME, path, { cause: error });
  return new BackendError(DRIVER_NAME, operation, path, { cause: error });
}
