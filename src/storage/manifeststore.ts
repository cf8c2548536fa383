// The manifests of a repository: exact bytes stored as blobs, a revision link per manifest
// (distribution links manifests only under `_manifests/revisions`, never in `_layers`), tags, and
// Berth's referrers index under `_manifests/referrers` (see paths.ts).

import { deleteIfPresent, digestsBelow } from "./blobstore.js";
import type { StorageContext } from "./context.js";
import { digestOf, parseDigest, tryParseDigest, type ParsedDigest } from "./digest.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { LinkedBlobs } from "./linkedblobs.js";
import {
  MAX_MANIFEST_SIZE,
  parseManifest,
  referrerDescriptor,
  storedMediaType,
  type ParsedManifest,
} from "./manifest.js";
import { checkTag } from "./names.js";
import { manifestBlobs } from "./quota.js";
import { paths } from "./paths.js";
import type { TagStore } from "./tagstore.js";
import type {
  Descriptor,
  Digest,
  PutManifestResult,
  RepositoryManifests,
  StoredManifest,
} from "./types.js";

/** Manifests up to this size are kept in the in-process cache. */
const CACHEABLE_MANIFEST_SIZE = 64 * 1024;

function manifestUnknown(repository: string, digest: Digest): RegistryError {
  return new RegistryError(
    RegistryErrorCode.ManifestUnknown,
    `manifest ${digest} is not in repository ${repository}`,
    { digest },
  );
}

function blobUnknown(digest: string, what: string): RegistryError {
  return new RegistryError(
    RegistryErrorCode.ManifestBlobUnknown,
    `${what} ${digest} is not in the repository: push it first`,
    { digest },
  );
}

export class ManifestStore implements RepositoryManifests {
  constructor(
    private readonly context: StorageContext,
    private readonly repository: string,
    private readonly tags: TagStore,
  ) {}

  async exists(digest: Digest): Promise<boolean> {
    return this.has(parseDigest(digest));
  }

  /** True when the revision link is there. */
  async has(digest: ParsedDigest): Promise<boolean> {
    const link = await this.context.links.readKnown(paths.revisionLink(this.repository, digest));
    return link !== undefined;
  }

  async get(digest: Digest): Promise<StoredManifest> {
    const parsed = parseDigest(digest);
    const stored = (await this.has(parsed)) ? await this.stored(parsed) : undefined;
    if (stored === undefined) throw manifestUnknown(this.repository, digest);
    return stored;
  }

  /**
   * `get`'s answer from this process's memory alone (the revision link known, the bytes cached),
   * without a promise; undefined when that needs storage (or the digest is invalid), and then `get`
   * answers. Deletes and the collector forget both, as for `get`.
   */
  getCached(digest: Digest): StoredManifest | undefined {
    const parsed = tryParseDigest(digest);
    if (parsed === undefined) return undefined;
    const { links, manifestCache } = this.context;
    if (links.known(paths.revisionLink(this.repository, parsed)) === undefined) return undefined;
    return manifestCache.get(parsed.digest);
  }

  /** The bytes of a manifest revision of this repository, or undefined. */
  async content(digest: ParsedDigest): Promise<Buffer | undefined> {
    if (!(await this.has(digest))) return undefined;
    return (await this.stored(digest))?.content;
  }

  /** A manifest's bytes and media type from the blob store (or the cache), by digest. */
  private async stored(digest: ParsedDigest): Promise<StoredManifest | undefined> {
    const cached = this.context.manifestCache.get(digest.digest);
    if (cached !== undefined) return cached;
    const content = await this.context.blobs.getContent(digest);
    if (content === undefined) return undefined;
    return this.remember(digest, content);
  }

  /**
   * The manifest as `get` returns it, kept in the cache when small. Frozen: the cache hands the
   * same object to every request.
   */
  private remember(digest: ParsedDigest, content: Buffer): StoredManifest {
    const stored = Object.freeze({
      digest: digest.digest,
      content,
      mediaType: storedMediaType(content),
    });
    if (content.length <= CACHEABLE_MANIFEST_SIZE) {
      this.context.manifestCache.set(digest.digest, stored);
    }
    return stored;
  }

  async put(
    content: Buffer,
    mediaType: string,
    options: { tag?: string; expectedDigest?: Digest; verifyReferences?: boolean } = {},
  ): Promise<PutManifestResult> {
    this.context.checkWritable();
    if (options.tag !== undefined) checkTag(options.tag);
    if (content.length > MAX_MANIFEST_SIZE) {
      throw new RegistryError(
        RegistryErrorCode.SizeInvalid,
        `manifest is ${content.length} bytes, more than the limit of ${MAX_MANIFEST_SIZE}`,
        { size: content.length, limit: MAX_MANIFEST_SIZE },
      );
    }
    const expected =
      options.expectedDigest === undefined ? undefined : parseDigest(options.expectedDigest);
    const digest = parseDigest(digestOf(content, expected?.algorithm ?? "sha256"));
    if (expected !== undefined && expected.digest !== digest.digest) {
      throw new RegistryError(
        RegistryErrorCode.DigestInvalid,
        `manifest digest is ${digest.digest}, the reference says ${expected.digest}`,
        { expected: expected.digest, actual: digest.digest },
      );
    }
    const manifest = parseManifest(content, mediaType);
    if (options.verifyReferences ?? true) await this.checkReferences(manifest);
    if (options.tag !== undefined) await this.tags.checkMutable(options.tag, digest.digest);
    const references = (): Promise<Map<Digest, number>> =>
      manifestBlobs(this.context, {
        digest: digest.digest,
        size: content.length,
        references: [
          ...(manifest.config === undefined ? [] : [manifest.config.digest]),
          ...manifest.layers.map((layer) => layer.digest),
          ...manifest.manifests.map((child) => child.digest),
        ],
      });
    return this.context.quotas.admit(this.context, this.repository, references, () =>
      this.store(content, digest, manifest, options.tag),
    );
  }

  /** Stores a validated manifest, its referrer entry and revision link, and tags it. */
  private async store(
    content: Buffer,
    digest: ParsedDigest,
    manifest: ParsedManifest,
    tag: string | undefined,
  ): Promise<PutManifestResult> {
    // The manifest's own bytes, protected from a concurrent garbage collector like its references.
    const refreshed = performance.now();
    await this.context.protection.refresh(digest);
    if (!(await this.context.blobs.exists(digest))) await this.context.blobs.put(digest, content);
    this.context.protection.stored(digest, refreshed);
    this.remember(digest, content);
    const subject =
      manifest.subject === undefined ? undefined : tryParseDigest(manifest.subject.digest);
    if (subject !== undefined) {
      await this.context.links.write(paths.referrerLink(this.repository, subject, digest), digest);
    }
    await this.context.links.writeKnown(paths.revisionLink(this.repository, digest), digest);
    if (tag !== undefined) await this.tags.link(tag, digest);
    return {
      digest: digest.digest,
      mediaType: manifest.mediaType,
      ...(subject !== undefined ? { subject: subject.digest } : {}),
    };
  }

  /** MANIFEST_BLOB_UNKNOWN for the first referenced blob or child manifest not in the repository. */
  private async checkReferences(manifest: ParsedManifest): Promise<void> {
    const checks: Promise<RegistryError | undefined>[] = [];
    if (manifest.config !== undefined) {
      checks.push(this.blobMissing(manifest.config.digest, "config"));
    }
    for (const layer of manifest.layers) {
      // Layers with urls (non-distributable layers) are fetched from there, not pushed.
      if (Array.isArray(layer.urls) && layer.urls.length > 0) continue;
      checks.push(this.blobMissing(layer.digest, "layer"));
    }
    for (const child of manifest.manifests) {
      const parsed = parseDigest(child.digest);
      checks.push(
        this.has(parsed)
          .then((ok) => ok && this.protect(parsed))
          .then((ok) => (ok ? undefined : blobUnknown(child.digest, "manifest"))),
      );
    }
    const missing = (await Promise.all(checks)).find((error) => error !== undefined);
    if (missing !== undefined) throw missing;
  }

  /**
   * MANIFEST_BLOB_UNKNOWN unless the blob is linked here and its data stored. The data is checked
   * without a cache after the blob's protection is refreshed (protection.ts): a blob a garbage
   * collector took is reported, never acknowledged.
   */
  private async blobMissing(digest: string, what: string): Promise<RegistryError | undefined> {
    const parsed = parseDigest(digest);
    const info = await LinkedBlobs.find(this.context, this.repository, parsed);
    if (info !== undefined && (await this.protect(parsed))) return undefined;
    await this.context.links.forget(paths.layerLink(this.repository, parsed));
    return blobUnknown(digest, what);
  }

  /** Refreshes the protection of a blob or manifest this push relies on; false if not stored. */
  private protect(digest: ParsedDigest): Promise<boolean> {
    const { blobs, protection } = this.context;
    return protection.protect(digest, () => blobs.exists(digest));
  }

  async delete(digest: Digest): Promise<void> {
    this.context.checkDeletable();
    const parsed = parseDigest(digest);
    if (!(await this.has(parsed))) throw manifestUnknown(this.repository, digest);
    const tags = await this.tags.lookup(parsed.digest);
    // Nothing is removed when an immutable tag points at it.
    for (const tag of tags) await this.tags.checkMutable(tag);
    for (const tag of tags) {
      await deleteIfPresent(this.context.driver, paths.tag(this.repository, tag));
    }
    await this.removeRevision(parsed);
    this.context.quotas.drop(this.repository);
  }

  /** Removes a revision and its referrer entry (tags are the caller's business). */
  async removeRevision(digest: ParsedDigest): Promise<void> {
    const content = (await this.stored(digest))?.content;
    const subject = content === undefined ? undefined : subjectOf(content);
    if (subject !== undefined) {
      await deleteIfPresent(this.context.driver, paths.referrer(this.repository, subject, digest));
    }
    try {
      await deleteIfPresent(this.context.driver, paths.revision(this.repository, digest));
    } finally {
      await this.context.links.forget(paths.revisionLink(this.repository, digest));
    }
  }

  /** Descriptors of the manifests in this repository whose subject is `subject`. */
  async referrers(subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const parsedSubject = parseDigest(subject);
    const directory = paths.referrers(this.repository, parsedSubject);
    const digests = await digestsBelow(this.context.driver, directory);
    digests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    const descriptors = await Promise.all(
      digests.map(async (digest) => {
        const content = await this.content(digest);
        if (content === undefined) return undefined;
        try {
          return referrerDescriptor(
            parseManifest(content, undefined),
            digest.digest,
            content.length,
          );
        } catch {
          // Bytes this registry did not validate (written by another tool): not a referrer.
          return undefined;
        }
      }),
    );
    return descriptors.filter(
      (descriptor): descriptor is Descriptor =>
        descriptor !== undefined &&
        (artifactType === undefined || descriptor.artifactType === artifactType),
    );
  }
}

/** The subject digest of stored manifest bytes, if they have one. */
export function subjectOf(content: Buffer): ParsedDigest | undefined {
  try {
    const document = JSON.parse(content.toString("utf8")) as { subject?: { digest?: unknown } };
    return tryParseDigest(document.subject?.digest);
  } catch {
    return undefined;
  }
}
