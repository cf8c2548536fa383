// Tags: `_manifests/tags/<tag>/current/link` names the manifest a tag points at now, and
// `index/<algorithm>/<hex>/link` every manifest it has pointed at, as distribution writes them.
// Tags are mutable, so they are always read from storage, never cached.

import { isPathNotFound, unlessNotFound } from "./blobstore.js";
import type { StorageContext } from "./context.js";
import { parseDigest, type ParsedDigest } from "./digest.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { checkTag } from "./names.js";
import { baseName, paths } from "./paths.js";
import type { Digest, RepositoryTags } from "./types.js";

/** Reads at most this many tag links at once when looking tags up by digest. */
const LOOKUP_CONCURRENCY = 16;

function tagUnknown(repository: string, tag: string): RegistryError {
  return new RegistryError(
    RegistryErrorCode.ManifestUnknown,
    `no tag ${JSON.stringify(tag)} in repository ${repository}`,
    { tag },
  );
}

function immutable(
  repository: string,
  tag: string,
  rule: string,
  current: Digest,
  wanted: Digest | undefined,
): RegistryError {
  const what = wanted === undefined ? "deleted" : `moved to ${wanted}`;
  return new RegistryError(
    RegistryErrorCode.Denied,
    `tag ${JSON.stringify(tag)} of ${repository} is immutable (storage.tags.immutable rule ` +
      `${JSON.stringify(rule)}): it points at ${current} and cannot be ${what}`,
    { tag, rule, current, ...(wanted === undefined ? {} : { wanted }) },
  );
}

export class TagStore implements RepositoryTags {
  constructor(
    private readonly context: StorageContext,
    private readonly repository: string,
    private readonly repositoryExists: () => Promise<boolean>,
    private readonly manifestExists: (digest: ParsedDigest) => Promise<boolean>,
  ) {}

  async list(): Promise<string[]> {
    const entries = await unlessNotFound(this.context.driver.list(paths.tags(this.repository)));
    if (entries === undefined) {
      if (await this.repositoryExists()) return [];
      throw new RegistryError(
        RegistryErrorCode.NameUnknown,
        `repository ${this.repository} is not known to the registry`,
        { name: this.repository },
      );
    }
    return entries.map(baseName).sort();
  }

  async resolve(tag: string): Promise<Digest> {
    checkTag(tag);
    const digest = await this.context.links.read(paths.tagCurrentLink(this.repository, tag));
    if (digest === undefined) throw tagUnknown(this.repository, tag);
    return digest.digest;
  }

  async tag(tag: string, digest: Digest): Promise<void> {
    this.context.checkWritable();
    checkTag(tag);
    const parsed = parseDigest(digest);
    if (!(await this.manifestExists(parsed))) {
      throw new RegistryError(
        RegistryErrorCode.ManifestUnknown,
        `manifest ${digest} is not in repository ${this.repository}`,
        { digest },
      );
    }
    await this.link(tag, parsed);
  }

  /** The `storage.tags.immutable` rule `tag` falls under, if any. */
  immutableRule(tag: string): string | undefined {
    return this.context.immutableTags.find((rule) => rule.pattern.test(tag))?.source;
  }

  /**
   * DENIED when `tag` is immutable and exists pointing at another manifest than `digest` (at any,
   * for a delete: `digest` undefined). A check before the work; `link` decides atomically.
   */
  async checkMutable(tag: string, digest?: Digest): Promise<void> {
    const rule = this.immutableRule(tag);
    if (rule === undefined) return;
    const current = await this.context.links.read(paths.tagCurrentLink(this.repository, tag));
    if (current === undefined || current.digest === digest) return;
    throw immutable(this.repository, tag, rule, current.digest, digest);
  }

  /** What serializes the writes of one tag in this process (pushes and retention). */
  private key(tag: string): string {
    return `tag:${paths.tag(this.repository, tag)}`;
  }

  /**
   * Writes the tag's links; the manifest is known to be in the repository. An immutable tag's
   * current link is created with the driver's conditional write, so of concurrent pushes of
   * different manifests (on any replica) one wins and the others get DENIED.
   */
  link(tag: string, digest: ParsedDigest): Promise<void> {
    return this.context.queue.run(this.key(tag), async () => {
      const { links, driver } = this.context;
      const current = paths.tagCurrentLink(this.repository, tag);
      const rule = this.immutableRule(tag);
      if (rule !== undefined) {
        const created = await driver.putContentIfAbsent?.(current, Buffer.from(digest.digest));
        const existing = created ? undefined : await links.read(current);
        if (existing !== undefined && existing.digest !== digest.digest) {
          throw immutable(this.repository, tag, rule, existing.digest, digest.digest);
        }
        await links.write(paths.tagIndexEntryLink(this.repository, tag, digest), digest);
        // The same manifest again: rewritten, as any push rewrites it (its time is the push time).
        if (!created) await links.write(current, digest);
        return;
      }
      await links.write(paths.tagIndexEntryLink(this.repository, tag, digest), digest);
      await links.write(current, digest);
    });
  }

  async untag(tag: string): Promise<void> {
    this.context.checkDeletable();
    checkTag(tag);
    await this.checkMutable(tag);
    try {
      await this.context.driver.delete(paths.tag(this.repository, tag));
    } catch (error) {
      if (isPathNotFound(error)) throw tagUnknown(this.repository, tag);
      throw error;
    }
  }

  /**
   * Retention's untag: removes `tag` only if it still points at `digest` and was not pushed since
   * `pushedAt` (a push that raced with the decision wins). Needs no `storage.delete.enabled` (an
   * operator's policy, as garbage collection); never removes an immutable tag. True if removed.
   */
  untagIfUnchanged(tag: string, digest: Digest, pushedAt: Date): Promise<boolean> {
    this.context.checkWritable();
    if (this.immutableRule(tag) !== undefined) return Promise.resolve(false);
    return this.context.queue.run(this.key(tag), async () => {
      const current = paths.tagCurrentLink(this.repository, tag);
      const [target, info] = await Promise.all([
        this.context.links.read(current),
        unlessNotFound(this.context.driver.stat(current)),
      ]);
      if (target?.digest !== digest || info?.modTime.getTime() !== pushedAt.getTime()) {
        return false;
      }
      await unlessNotFound(this.context.driver.delete(paths.tag(this.repository, tag)));
      return true;
    });
  }

  async pushedAt(tag: string): Promise<Date> {
    checkTag(tag);
    const info = await unlessNotFound(
      this.context.driver.stat(paths.tagCurrentLink(this.repository, tag)),
    );
    if (info === undefined) throw tagUnknown(this.repository, tag);
    return info.modTime;
  }

  async lookup(digest: Digest): Promise<string[]> {
    const parsed = parseDigest(digest);
    const current = await this.currentLinks();
    return [...current].filter(([, target]) => target === parsed.digest).map(([tag]) => tag);
  }

  /** Every tag with the digest it points at now, in tag order. */
  async currentLinks(): Promise<Map<string, Digest>> {
    const entries = await unlessNotFound(this.context.driver.list(paths.tags(this.repository)));
    const tags = (entries ?? []).map(baseName).sort();
    const result = new Map<string, Digest>();
    for (let start = 0; start < tags.length; start += LOOKUP_CONCURRENCY) {
      const batch = tags.slice(start, start + LOOKUP_CONCURRENCY);
      const targets = await Promise.all(
        batch.map((tag) => this.context.links.read(paths.tagCurrentLink(this.repository, tag))),
      );
      batch.forEach((tag, i) => {
        const target = targets[i];
        if (target !== undefined) result.set(tag, target.digest);
      });
    }
    return result;
  }
}
