// Errors of the registry storage layer. Each carries the OCI Distribution error code it stands
// for; the API layer maps codes to HTTP statuses in one place. `detail` is what the spec's error
// envelope shows as `detail`.

/** The OCI Distribution Spec error codes (plus the few distribution adds). */
export const RegistryErrorCode = {
  BlobUnknown: "BLOB_UNKNOWN",
  BlobUploadInvalid: "BLOB_UPLOAD_INVALID",
  BlobUploadUnknown: "BLOB_UPLOAD_UNKNOWN",
  DigestInvalid: "DIGEST_INVALID",
  ManifestBlobUnknown: "MANIFEST_BLOB_UNKNOWN",
  ManifestInvalid: "MANIFEST_INVALID",
  ManifestUnknown: "MANIFEST_UNKNOWN",
  NameInvalid: "NAME_INVALID",
  NameUnknown: "NAME_UNKNOWN",
  SizeInvalid: "SIZE_INVALID",
  TagInvalid: "TAG_INVALID",
  Unauthorized: "UNAUTHORIZED",
  Denied: "DENIED",
  Unsupported: "UNSUPPORTED",
  TooManyRequests: "TOOMANYREQUESTS",
  RangeInvalid: "RANGE_INVALID",
} as const;

export type RegistryErrorCode = (typeof RegistryErrorCode)[keyof typeof RegistryErrorCode];

/** An error of the registry storage layer, carrying its OCI error code. */
export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly detail: unknown;

  constructor(
    code: RegistryErrorCode,
    message: string,
    detail?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RegistryError";
    this.code = code;
    this.detail = detail;
  }
}

/** True when `error` is a RegistryError with `code`. */
export function isRegistryError(error: unknown, code?: RegistryErrorCode): error is RegistryError {
  return error instanceof RegistryError && (code === undefined || error.code === code);
}
