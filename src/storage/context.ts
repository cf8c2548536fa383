// What every part of one registry shares: the driver, the blob and link stores, the caches and
// the rules for mutations (read-only mode, delete enabled).

import type { StorageDriver } from "../driver/index.js";
import type { BlobStore, LinkStore } from "./blobstore.js";
import type { BoundedCache, KeyedQueue } from "./cache.js";
import type { Protection } from "./protection.js";
import type { Quotas } from "./quota.js";
import type { Hash } from "node:crypto";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import type { Digest, RegistryStorageOptions, StoredManifest } from "./types.js";

/**
 * The running sha256 of an upload's data, valid for its first `offset` bytes, and when the upload
 * started: what this process knows of an upload it started or appended to, so that resuming it
 * reads nothing from storage.
 */
export interface UploadHashState {
  offset: number;
  hash: Hash;
  startedAt: Date;
  /** True while nothing of the upload is stored, not even `startedat` (upload.ts). */
  unstarted?: boolean;
}

export interface StorageContext {
  readonly driver: StorageDriver;
  readonly blobs: BlobStore;
  readonly links: LinkStore;
  readonly options: Required<RegistryStorageOptions>;
  /**
   * Running upload hashes, by upload directory (`paths.upload`). Bounded: an upload whose state was
   * evicted (abandoned long ago) is re-hashed from its data if it is ever finished.
   */
  readonly hashStates: BoundedCache<string, UploadHashState>;
  /**
   * Uploads this process finished, cancelled or refused, by upload directory: an upload that
   * stored nothing is otherwise known by its id alone (upload.ts), and these ids are done.
   */
  readonly endedUploads: BoundedCache<string, true>;
  /** Serializes operations on one upload (and on one tag) in this process. */
  readonly queue: KeyedQueue;
  /** Small manifests by digest, with the media type their bytes declare: immutable content. */
  readonly manifestCache: BoundedCache<Digest, StoredManifest>;
  /** Refresh records for a concurrent garbage collector (protection.ts). */
  readonly protection: Protection;
  /** The immutable tag rules (`storage.tags.immutable`), compiled. */
  readonly immutableTags: readonly { source: string; pattern: RegExp }[];
  /** The storage quotas and their counts (quota.ts). */
  readonly quotas: Quotas;
  /** UNSUPPORTED in read-only mode. */
  checkWritable(): void;
  /** UNSUPPORTED unless deleting is enabled (and not read-only). */
  checkDeletable(): void;
}

/** The rules for mutations, from the options. */
export function mutationChecks(options: Required<RegistryStorageOptions>): {
  checkWritable(): void;
  checkDeletable(): void;
} {
  const checkWritable = (): void => {
    if (options.readOnly) {
      throw new RegistryError(
        RegistryErrorCode.Unsupported,
        "the registry is in read-only mode: no uploads, pushes, tags or deletes",
        { readOnly: true },
      );
    }
  };
  return {
    checkWritable,
    checkDeletable(): void {
      checkWritable();
      if (!options.deleteEnabled) {
        throw new RegistryError(
          RegistryErrorCode.Unsupported,
          "deleting is disabled in this registry (storage.delete.enabled is false)",
          { deleteEnabled: false },
        );
      }
    },
  };
}
