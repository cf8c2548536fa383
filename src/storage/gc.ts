// Garbage collection, mark and sweep, as distribution's `registry garbage-collect`:
//
// Mark: in every repository, every manifest revision is a root; with `deleteUntagged`, only the
// manifests a tag points at are, plus (Berth's rule) every manifest whose `subject` is a kept
// manifest, so signatures and SBOMs (untagged by nature) live as long as what they describe. A
// kept manifest marks its own blob, its config and layers and, for an index, its child manifests,
// recursively, whether or not they are tagged.
// Sweep: with `deleteUntagged`, the unmarked manifest revisions are removed (with their tag index
// entries and referrer entries); then every blob not marked is removed from the blob store, and
// its `_layers` links from every repository.
//
// Like distribution's, it must not run while clients push: a blob uploaded but not yet referenced
// by a manifest is not marked. Run it with the registry read-only or stopped.

import { deleteIfPresent, digestsBelow, unlessNotFound } from "./blobstore.js";
import { eachRepository } from "./catalog.js";
import type { StorageContext } from "./context.js";
import { tryParseDigest, type ParsedDigest } from "./digest.js";
import { referencesOf, type ManifestReferences } from "./manifest.js";
import { baseName, paths } from "./paths.js";
import type { Digest, GarbageCollectOptions, GarbageCollectResult } from "./types.js";

/** One repository's manifests, parsed once. */
interface RepositoryManifestGraph {
  name: string;
  /** Every revision's references; undefined for one whose bytes are missing or not JSON. */
  manifests: Map<Digest, ManifestReferences | undefined>;
  tagged: Set<Digest>;
  tags: string[];
}

async function loadRepository(
  context: StorageContext,
  name: string,
): Promise<RepositoryManifestGraph> {
  const manifests = new Map<Digest, ManifestReferences | undefined>();
  for (const digest of await digestsBelow(context.driver, paths.revisions(name))) {
    const link = await context.links.read(paths.revisionLink(name, digest));
    if (link === undefined) continue;
    const content = await context.blobs.getContent(digest);
    manifests.set(digest.digest, content === undefined ? undefined : referencesOf(content));
  }
  const tags = ((await unlessNotFound(context.driver.list(paths.tags(name)))) ?? [])
    .map(baseName)
    .sort();
  const tagged = new Set<Digest>();
  for (const tag of tags) {
    const target = await context.links.read(paths.tagCurrentLink(name, tag));
    if (target !== undefined) tagged.add(target.digest);
  }
  return { name, manifests, tagged, tags };
}

/** The manifests of `graph` to keep: the roots, what they reach, and referrers of kept ones. */
function keptManifests(graph: RepositoryManifestGraph, deleteUntagged: boolean): Set<Digest> {
  const kept = new Set<Digest>();
  const keep = (digest: Digest): void => {
    if (kept.has(digest)) return;
    kept.add(digest);
    for (const child of graph.manifests.get(digest)?.children ?? []) keep(child);
  };
  for (const digest of graph.manifests.keys()) {
    if (!deleteUntagged || graph.tagged.has(digest)) keep(digest);
  }
  if (!deleteUntagged) return kept;
  // Referrers of kept manifests, until nothing changes (a signature of an SBOM of an image).
  for (let changed = true; changed;) {
    changed = false;
    for (const [digest, manifest] of graph.manifests) {
      const subject = manifest?.subject;
      if (!kept.has(digest) && subject !== undefined && kept.has(subject)) {
        keep(digest);
        changed = true;
      }
    }
  }
  return kept;
}

export async function garbageCollect(
  context: StorageContext,
  options: GarbageCollectOptions = {},
): Promise<GarbageCollectResult> {
  const log = options.log ?? (() => undefined);
  const dryRun = options.dryRun ?? false;
  const deleteUntagged = options.deleteUntagged ?? false;

  const repositories: string[] = [];
  await eachRepository(context.driver, (name) => void repositories.push(name));

  const marked = new Set<Digest>();
  const deletedManifests: { repository: string; digest: Digest }[] = [];
  const unkept: { graph: RepositoryManifestGraph; digest: ParsedDigest }[] = [];
  for (const name of repositories) {
    const graph = await loadRepository(context, name);
    const kept = keptManifests(graph, deleteUntagged);
    for (const [digest, manifest] of graph.manifests) {
      if (!kept.has(digest)) {
        log(`${name}: manifest eligible for deletion: ${digest}`);
        deletedManifests.push({ repository: name, digest });
        unkept.push({ graph, digest: tryParseDigest(digest)! });
        continue;
      }
      log(`${name}: marking manifest ${digest}`);
      marked.add(digest);
      if (manifest === undefined) {
        // Its references cannot be marked, so sweeping could remove blobs it needs.
        throw new Error(
          `garbage collection stopped, nothing removed: manifest ${digest} of ${name} is missing or not JSON`,
        );
      }
      for (const blob of manifest.blobs) {
        log(`${name}: marking blob ${blob}`);
        marked.add(blob);
      }
    }
  }

  const deletedBlobs: Digest[] = [];
  for await (const digest of context.blobs.enumerate()) {
    if (marked.has(digest.digest)) continue;
    log(`blob eligible for deletion: ${digest.digest}`);
    deletedBlobs.push(digest.digest);
  }

  if (!dryRun) {
    for (const { graph, digest } of unkept) await removeManifest(context, graph, digest);
    const doomed = new Set(deletedBlobs);
    for (const digest of deletedBlobs) await context.blobs.delete(tryParseDigest(digest)!);
    for (const name of repositories) {
      for (const link of await digestsBelow(context.driver, paths.layers(name))) {
        if (doomed.has(link.digest)) {
          try {
            await deleteIfPresent(context.driver, paths.layerLinkDirectory(name, link));
          } finally {
            context.links.forget(paths.layerLink(name, link));
          }
        }
      }
    }
  }
  log(
    `${marked.size} blobs marked, ${deletedBlobs.length} blobs and ${deletedManifests.length} manifests ${dryRun ? "eligible for deletion" : "deleted"}`,
  );
  return { markedBlobs: marked.size, deletedBlobs, deletedManifests };
}

/** Removes a manifest revision, its referrer entry and the tag index entries naming it. */
async function removeManifest(
  context: StorageContext,
  graph: RepositoryManifestGraph,
  digest: ParsedDigest,
): Promise<void> {
  const subject = tryParseDigest(graph.manifests.get(digest.digest)?.subject);
  if (subject !== undefined) {
    await deleteIfPresent(context.driver, paths.referrer(graph.name, subject, digest));
  }
  for (const tag of graph.tags) {
    await deleteIfPresent(context.driver, paths.tagIndexEntry(graph.name, tag, digest));
  }
  try {
    await deleteIfPresent(context.driver, paths.revision(graph.name, digest));
  } finally {
    context.links.forget(paths.revisionLink(graph.name, digest));
  }
  context.manifestCache.delete(digest.digest);
}
