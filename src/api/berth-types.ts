// The answers of Berth's extension endpoints `GET /v2/_berth/tags/<name>` and
// `GET /v2/_berth/usage/<name>` (berth.ts), in a file of its own without imports so that the web
// UI (src/ui/app) shares these types with the server.

/** A platform as OCI descriptors and image configs state it. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** One tag of the answer. */
export interface TagDetail {
  name: string;
  digest: string;
  mediaType: string;
  artifactType?: string;
  /** ISO 8601: when the tag was last pushed. */
  pushedAt: string;
  /** Bytes of the manifest and what it references; absent when not known. */
  size?: number;
  platforms: Platform[];
}

/** The answer of `GET /v2/_berth/tags/<name>`. */
export interface TagDetailsPage {
  name: string;
  /** Whether the registry allows deletes (`storage.delete.enabled`). */
  deleteEnabled: boolean;
  /** Whether the caller may delete in this repository (and deletes are enabled). */
  mayDelete: boolean;
  tags: TagDetail[];
}

/** The answer of `GET /v2/_berth/usage/<name>`. */
export interface RepositoryUsagePage {
  name: string;
  /** Distinct blobs the repository links (layers, configs) and its manifests. */
  blobs: number;
  /** Their bytes; a blob shared with other repositories counts in each of them. */
  bytes: number;
}
