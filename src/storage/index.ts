// The registry storage layer's public surface: the interface the API layer codes against
// (types, errors), its implementation over a storage driver, and the rules the API layer checks
// requests with (digests, repository names and their length limit, tags, manifest media types and
// size limit, upload ids). The API imports storage from here only and restates none of them.

export * from "./types.js";
export * from "./errors.js";
export { Registry, createRegistryStorage, type RegistryStorageTuning } from "./registry.js";
export {
  IN_PROCESS_TTL_MS,
  InProcessDescriptorCache,
  type BlobDescriptorCache,
} from "./descriptor-cache.js";
export {
  DIGEST_GRAMMAR,
  digestOf,
  digestOfStream,
  isValidDigest,
  parseDigest,
  tryParseDigest,
  type DigestAlgorithm,
  type ParsedDigest,
} from "./digest.js";
export {
  MAX_REPOSITORY_NAME_LENGTH,
  REPOSITORY_NAME_PATTERN,
  TAG_PATTERN,
  checkRepositoryName,
  checkTag,
  isValidRepositoryName,
  isValidTag,
} from "./names.js";
export {
  MAX_MANIFEST_SIZE,
  ManifestMediaType,
  baseMediaType,
  isManifestMediaType,
} from "./manifest.js";
export { notificationSpoolPath, p2pBlobPaths, proxyPullsPath, STORAGE_ROOT } from "./paths.js";
export { CLOCK_SLACK_MS } from "./gc.js";
export { HealthProbe, HealthProbeError } from "./health.js";
export { isValidUploadId } from "./upload.js";
export { PullRecord, PULL_FLUSH_MS } from "./pulls.js";
export { formatBytes, repositoryMatcher } from "./quota.js";
export type {
  RetentionDecision,
  RetentionOptions,
  RetentionPolicy,
  RetentionResult,
} from "./retention.js";
// What a blob copy rejects with when the client it writes to went away.
export { DestinationClosedError } from "../driver/index.js";
// Whether a failure means the storage is full (the API answers 507).
export { isStorageFull } from "../driver/index.js";
