// The transferer of the CAS driver (seed 002's ImageTransferer): where tags and blobs come from
// and go to when they are not in the local content-addressable store. Berth's live in src/p2p:
// one backed by an origin registry over the OCI API, one that moves blobs between peers.

import type { Readable } from "node:stream";

/** What the driver knows about a call, for transferers that need a repository (the OCI API does). */
export interface TransferHint {
  /** The repository the digest was last reached through (a layer or revision link). */
  repository?: string;
  /** True when the blob is a manifest (uploaded to an origin as a manifest, not a blob). */
  manifest?: boolean;
  /**
   * For `stat`: whether `repository` has the blob (a read-write driver's link check, before a
   * client skips an upload), not whether the blob exists anywhere.
   */
  inRepository?: boolean;
}

/** Size of a blob a transferer can give. */
export interface TransferStat {
  size: number;
}

/**
 * Moves tags and blobs between the local CAS and the rest of the fleet. Every method rejects with
 * TransferNotFoundError when the thing asked for does not exist there.
 */
export interface Transferer {
  /** The blob's bytes; the caller verifies the digest before the bytes enter the CAS. */
  download(digest: string, hint?: TransferHint): Promise<Readable>;
  /** Sends a blob that just entered the CAS (read-write driver only). */
  upload(digest: string, stream: Readable, hint?: TransferHint): Promise<void>;
  /** The digest the tag points at. */
  getTag(repository: string, tag: string): Promise<string>;
  /** Points the tag at the manifest `digest` (already uploaded). */
  putTag(repository: string, tag: string, digest: string): Promise<void>;
  /** The blob's size, without downloading it. */
  stat(digest: string, hint?: TransferHint): Promise<TransferStat>;
  /**
   * Optional: downloads the blob straight into `file` (a path the caller owns), for transferers that
   * write pieces out of order (peer to peer). The caller verifies the digest afterwards.
   */
  downloadToFile?(digest: string, file: string, hint?: TransferHint): Promise<void>;
  /** Optional: releases what the transferer holds (sockets, swarms). */
  close?(): Promise<void>;
}

/** A tag or blob the transferer's side does not have. */
export class TransferNotFoundError extends Error {
  readonly code = "ERR_TRANSFER_NOT_FOUND";

  constructor(what: string) {
    super(`not found: ${what}`);
    this.name = "TransferNotFoundError";
  }
}
