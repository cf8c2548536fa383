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

  /** Writes the tag's links; the manifest is known to be in the repository. */
  async link(tag: string, digest: ParsedDigest): Promise<void> {
    const { links } = this.context;
    await links.write(paths.tagIndexEntryLink(this.repository, tag, digest), digest);
    await links.write(paths.tagCurrentLink(this.repository, tag), digest);
  }

  async untag(tag: string): Promise<void> {
    this.context.checkDeletable();
    checkTag(tag);
    try {
      await this.context.driver.delete(paths.tag(this.repository, tag));
    } catch (error) {
      if (isPathNotFound(error)) throw tagUnknown(this.repository, tag);
      throw error;
    }
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
