// The sweep of garbage collection (gc.ts marks), step by step as docs/gc.md argues it:
//
// A blob neither marked nor young (data, refresh record and every layer link older than the mark
// start minus `delay`) is
//   1. moved aside to `/berth/gc/trash` (a pull of it fails from now on; a push that checks it
//      now is refused, never acknowledged),
//   2. put back if its refresh record became young meanwhile (a push checked it before step 1),
//   3. otherwise unlinked from every repository that linked it, and its trash deleted,
//   4. and its links written again if the record became young after all (an upload brought the
//      same bytes back while the links were being removed).
// An unkept manifest (with deleteUntagged) is removed, then put back (with everything it reaches)
// if its refresh record became young meanwhile, before any blob is swept.
// A collector that stopped between 1 and 3 leaves data in the trash: the next run puts it back.

import { deleteIfPresent, digestsBelow, isPathNotFound, unlessNotFound } from "./blobstore.js";
import type { StorageContext } from "./context.js";
import { tryParseDigest, type ParsedDigest } from "./digest.js";
import { eachLimited, keepClosure, markBlobs, type RepositoryManifestGraph } from "./gc.js";
import { paths } from "./paths.js";
import type { Digest } from "./types.js";
import type { FileInfo } from "../driver/index.js";

export interface SweepOptions {
  /** Backend time (ms) from which on a modification counts as young; null: nothing is young. */
  youngSince: number | null;
  dryRun: boolean;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** What sweeping one blob did: nothing (undefined), or it was eligible, with its size. */
export interface BlobOutcome {
  size: number;
  /** Deleted (or, on a dry run, would be); false when a racing push made the sweep put it back. */
  removed: boolean;
}

export class Sweeper {
  restoredBlobs = 0;
  restoredManifests = 0;

  constructor(
    private readonly context: StorageContext,
    private readonly options: SweepOptions,
  ) {}

  private young(info: FileInfo | undefined): boolean {
    const since = this.options.youngSince;
    return since !== null && info !== undefined && info.modTime.getTime() >= since;
  }

  private stat(path: string): Promise<FileInfo | undefined> {
    return unlessNotFound(this.context.driver.stat(path));
  }

  /** True when the digest's refresh record is young: a push relied on it lately. */
  private async refreshed(digest: ParsedDigest): Promise<boolean> {
    if (this.options.youngSince === null) return false;
    return this.young(await this.stat(paths.gcRefreshed(digest)));
  }

  /** An untagged manifest pushed or relied on lately: a root of the mark. */
  async manifestIsYoung(repository: string, digest: ParsedDigest): Promise<boolean> {
    if (this.options.youngSince === null) return false;
    if (this.young(await this.stat(paths.revisionLink(repository, digest)))) return true;
    return this.refreshed(digest);
  }

  /** Puts back blob data a collector left in the trash when it stopped mid-sweep. */
  async recover(): Promise<void> {
    const { driver, blobs } = this.context;
    for (const digest of await digestsBelow(driver, paths.gcTrashRoot())) {
      if (await blobs.exists(digest)) await deleteIfPresent(driver, paths.gcTrash(digest));
      else await driver.move(paths.gcTrash(digest), paths.blobData(digest));
      this.options.log(`restored ${digest.digest} left aside by an interrupted collection`);
    }
  }

  /**
   * Removes the unkept manifests, then puts back those a push relied on meanwhile with what they
   * reach (marking their blobs). Returns the manifests removed for good (or eligible, dry run).
   */
  async sweepManifests(
    unkept: { graph: RepositoryManifestGraph; digest: Digest }[],
    marked: Set<Digest>,
  ): Promise<{ repository: string; digest: Digest }[]> {
    if (this.options.dryRun) {
      return unkept.map(({ graph, digest }) => ({ repository: graph.name, digest }));
    }
    const removed = new Map<RepositoryManifestGraph, Set<Digest>>();
    for (const { graph, digest } of unkept) {
      await this.removeManifest(graph, graph.parsed.get(digest)!);
      const set = removed.get(graph) ?? new Set<Digest>();
      set.add(digest);
      removed.set(graph, set);
    }
    const deleted: { repository: string; digest: Digest }[] = [];
    for (const [graph, digests] of removed) {
      const roots: Digest[] = [];
      for (const digest of digests) {
        if (await this.refreshed(graph.parsed.get(digest)!)) roots.push(digest);
      }
      const back = new Set<Digest>();
      keepClosure(graph, back, roots);
      markBlobs(graph, back, marked, this.options.log);
      for (const digest of digests) {
        if (!back.has(digest)) {
          deleted.push({ repository: graph.name, digest });
          continue;
        }
        await this.restoreManifest(graph, graph.parsed.get(digest)!);
        this.restoredManifests++;
        this.options.log(`${graph.name}: manifest ${digest} put back: a push relied on it`);
      }
    }
    return deleted;
  }

  /** Removes a manifest revision, its referrer entry and the tag index entries naming it. */
  private async removeManifest(
    graph: RepositoryManifestGraph,
    digest: ParsedDigest,
  ): Promise<void> {
    const { driver, links, manifestCache } = this.context;
    const subject = tryParseDigest(graph.manifests.get(digest.digest)?.subject);
    if (subject !== undefined) {
      await deleteIfPresent(driver, paths.referrer(graph.name, subject, digest));
    }
    for (const tag of graph.tags) {
      await deleteIfPresent(driver, paths.tagIndexEntry(graph.name, tag, digest));
    }
    try {
      await deleteIfPresent(driver, paths.revision(graph.name, digest));
    } finally {
      await links.forget(paths.revisionLink(graph.name, digest));
    }
    manifestCache.delete(digest.digest);
    this.context.protection.forget(digest);
  }

  private async restoreManifest(
    graph: RepositoryManifestGraph,
    digest: ParsedDigest,
  ): Promise<void> {
    const { links } = this.context;
    const subject = tryParseDigest(graph.manifests.get(digest.digest)?.subject);
    if (subject !== undefined) {
      await links.write(paths.referrerLink(graph.name, subject, digest), digest);
    }
    await links.write(paths.revisionLink(graph.name, digest), digest);
  }

  /** Sweeps one unmarked blob linked from `repositories` (as the mark listed them). */
  async sweepBlob(digest: ParsedDigest, repositories: string[]): Promise<BlobOutcome | undefined> {
    const { driver, blobs, links, protection } = this.context;
    const online = this.options.youngSince !== null;
    const data = await this.stat(paths.blobData(digest));
    if (data === undefined || data.isDir || this.young(data)) return undefined;
    if (await this.refreshed(digest)) return undefined;
    if (online) {
      for (const repository of repositories) {
        if (this.young(await this.stat(paths.layerLink(repository, digest)))) return undefined;
      }
    }
    this.options.log(`blob eligible for deletion: ${digest.digest}`);
    if (this.options.dryRun) return { size: data.size, removed: true };

    await blobs.forget(digest);
    protection.forget(digest);
    if (online) {
      const trash = paths.gcTrash(digest);
      try {
        await driver.move(paths.blobData(digest), trash);
      } catch (error) {
        if (isPathNotFound(error)) return undefined;
        throw error;
      }
      if (await this.refreshed(digest)) {
        await driver.move(trash, paths.blobData(digest));
        this.restoredBlobs++;
        this.options.log(`blob ${digest.digest} put back: a push relied on it`);
        return { size: data.size, removed: false };
      }
    }
    for (const repository of repositories) {
      try {
        await deleteIfPresent(driver, paths.layerLinkDirectory(repository, digest));
      } finally {
        await links.forget(paths.layerLink(repository, digest));
      }
    }
    this.context.manifestCache.delete(digest.digest);
    if (!online) {
      await blobs.delete(digest);
      return { size: data.size, removed: true };
    }
    await deleteIfPresent(driver, paths.gcTrash(digest));
    if (await this.refreshed(digest)) {
      // The same bytes came back (a new upload) while the links went: give the links back.
      for (const repository of repositories) {
        await links.write(paths.layerLink(repository, digest), digest);
      }
      this.options.log(`blob ${digest.digest} uploaded again during its sweep: links restored`);
    }
    return { size: data.size, removed: true };
  }

  /** Removes refresh records older than the window whose blob is not stored. */
  async cleanRecords(): Promise<void> {
    const { driver, blobs } = this.context;
    const records = await digestsBelow(driver, paths.gcRefreshedRoot());
    await eachLimited(records, 16, async (digest) => {
      this.options.signal?.throwIfAborted();
      if (await this.refreshed(digest)) return;
      if (await blobs.exists(digest)) return;
      await deleteIfPresent(driver, paths.gcRefreshed(digest));
    });
  }
}
