// Recognising "the storage is full" among driver errors, whatever the backend: a file system's
// ENOSPC or EDQUOT, or an object store's quota error (S3 and Ceph RGW answer `QuotaExceeded`,
// Azure `AccountQuotaExceeded`-like codes ending in `QuotaExceeded`). The API answers those with
// 507 Insufficient Storage instead of a generic 500, so an operator and a client see the cause.

const FULL_ERRNO = new Set(["ENOSPC", "EDQUOT"]);
const QUOTA = /QuotaExceeded$/;

/** True when `error`, or an error in its chain of causes, says the storage is full. */
export function isStorageFull(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; depth++) {
    const { code, Code, name } = current as Error & { code?: unknown; Code?: unknown };
    if (typeof code === "string" && (FULL_ERRNO.has(code) || QUOTA.test(code))) return true;
    if (typeof Code === "string" && QUOTA.test(Code)) return true;
    if (QUOTA.test(name)) return true;
    current = current.cause;
  }
  return false;
}
