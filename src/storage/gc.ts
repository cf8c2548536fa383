// Garbage collection, mark and sweep, safe while the registry serves (docs/gc.md has the argument).
//
// Mark: in every repository, every manifest revision is a root; with `deleteUntagged`, only the
// manifests a tag points at are, plus those whose revision link or refresh record is younger than
// `delay`, plus (Berth's rule) every manifest whose `subject` is a kept manifest, so signatures and
// SBOMs (untagged by nature) live as long as what they describe. A kept manifest marks its own
// blob, its config and layers and, for an index, its child manifests, recursively.
//
// Sweep (sweep.ts): with `deleteUntagged`, the unkept manifest revisions are removed, and put back
// when a push relied on them meanwhile; then every blob neither marked nor younger than `delay`
// (its data, its refresh record, its layer links) is moved aside, and deleted with its `_layers`
// links only when no push refreshed it while it was aside.
//
// With `delayMs: 0` nothing is young and no record is consulted: distribution's offline collection,
// for a registry that is stopped or read-only.

import { digestsBelow, unlessNotFound } from "./blobstore.js";
import { eachRepository } from "./catalog.js";
import type { StorageContext } from "./context.js";
import { type ParsedDigest } from "./digest.js";
import { referencesOf, type ManifestReferences } from "./manifest.js";
import { baseName, paths } from "./paths.js";
import { Sweeper } from "./sweep.js";
import type { Digest, GarbageCollectOptions, GarbageCollectResult } from "./types.js";

/**
 * Allowance for the backend's timestamps: S3's Last-Modified has a resolution of one second, and
 * the nodes of a clustered backend may disagree by about as much. Anything modified less than
 * `delay` plus this before the mark started counts as young.
 */
export const CLOCK_SLACK_MS = 2_000;

/** Storage calls the collector keeps in flight at once (its requests are small). */
const PARALLEL = 16;

/**
 * Runs `fn` over `items`, at most `limit` at a time. After a failure no item starts, and it
 * rejects with the first failure once the calls in flight have ended: a collection that failed
 * (and gave up its lease) leaves nothing of its own running beside the next one.
 */
export async function eachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const lanes = await Promise.allSettled(
    Array.from({ length: Math.min(limit, items.length) }, lane),
  );
  const failure = lanes.find((lane) => lane.status === "rejected");
  if (failure !== undefined) throw failure.reason;
}

/** One repository's manifests, parsed once. */
export interface RepositoryManifestGraph {
  name: string;
  /** Every revision's references; undefined for one whose bytes are missing or not JSON. */
  manifests: Map<Digest, ManifestReferences | undefined>;
  parsed: Map<Digest, ParsedDigest>;
  tagged: Set<Digest>;
  tags: string[];
}

/** The manifests of repository `name`, with its tags (but `ignoredTags`) and what they point at. */
export async function loadRepository(
  context: StorageContext,
  name: string,
  ignoredTags?: ReadonlySet<string>,
): Promise<RepositoryManifestGraph> {
  const manifests = new Map<Digest, ManifestReferences | undefined>();
  const parsed = new Map<Digest, ParsedDigest>();
  const revisions = await digestsBelow(context.driver, paths.revisions(name));
  const loaded = new Map<Digest, ManifestReferences | undefined>();
  await eachLimited(revisions, PARALLEL, async (digest) => {
    const link = await context.links.read(paths.revisionLink(name, digest));
    if (link === undefined) return;
    const content = await context.blobs.getContent(digest);
    loaded.set(digest.digest, content === undefined ? undefined : referencesOf(content));
  });
  // In path order, whatever order the reads finished in.
  for (const digest of revisions) {
    if (!loaded.has(digest.digest)) continue;
    manifests.set(digest.digest, loaded.get(digest.digest));
    parsed.set(digest.digest, digest);
  }
  const tags = ((await unlessNotFound(context.driver.list(paths.tags(name)))) ?? [])
    .map(baseName)
    .filter((tag) => ignoredTags?.has(tag) !== true)
    .sort();
  const tagged = new Set<Digest>();
  for (const tag of tags) {
    const target = await context.links.read(paths.tagCurrentLink(name, tag));
    if (target !== undefined) tagged.add(target.digest);
  }
  return { name, manifests, parsed, tagged, tags };
}

/** Adds to `kept` the manifests `roots` reach through index children. */
export function keepClosure(
  graph: RepositoryManifestGraph,
  kept: Set<Digest>,
  roots: Iterable<Digest>,
): void {
  const keep = (digest: Digest): void => {
    if (kept.has(digest)) return;
    kept.add(digest);
    for (const child of graph.manifests.get(digest)?.children ?? []) keep(child);
  };
  for (const root of roots) keep(root);
}

/** The manifests of `graph` to keep: the roots, what they reach, and referrers of kept ones. */
function keptManifests(
  graph: RepositoryManifestGraph,
  deleteUntagged: boolean,
  young: Set<Digest>,
): Set<Digest> {
  const kept = new Set<Digest>();
  const roots = [...graph.manifests.keys()].filter(
    (digest) => !deleteUntagged || graph.tagged.has(digest) || young.has(digest),
  );
  keepClosure(graph, kept, roots);
  if (!deleteUntagged) return kept;
  // Referrers of kept manifests, until nothing changes (a signature of an SBOM of an image).
  for (let changed = true; changed;) {
    changed = false;
    for (const [digest, manifest] of graph.manifests) {
      const subject = manifest?.subject;
      if (!kept.has(digest) && subject !== undefined && kept.has(subject)) {
        keepClosure(graph, kept, [digest]);
        changed = true;
      }
    }
  }
  return kept;
}

/** Marks the blobs of the kept manifests of `graph`; throws for one whose bytes are unreadable. */
export function markBlobs(
  graph: RepositoryManifestGraph,
  kept: Iterable<Digest>,
  marked: Set<Digest>,
  log: (line: string) => void,
): void {
  for (const digest of kept) {
    const manifest = graph.manifests.get(digest);
    log(`${graph.name}: marking manifest ${digest}`);
    marked.add(digest);
    if (manifest === undefined) {
      // Its references cannot be marked, so sweeping could remove blobs it needs.
      throw new Error(
        `garbage collection stopped, nothing removed: manifest ${digest} of ${graph.name} is missing or not JSON`,
      );
    }
    for (const blob of manifest.blobs) {
      log(`${graph.name}: marking blob ${blob}`);
      marked.add(blob);
    }
  }
}

/** The backend's clock: the modTime of a small object written now. */
async function backendNow(context: StorageContext): Promise<number> {
  await context.driver.putContent(paths.gcClock(), Buffer.from(new Date().toISOString(), "utf8"));
  return (await context.driver.stat(paths.gcClock())).modTime.getTime();
}

export async function garbageCollect(
  context: StorageContext,
  options: GarbageCollectOptions = {},
): Promise<GarbageCollectResult> {
  const log = options.log ?? (() => undefined);
  const dryRun = options.dryRun ?? false;
  const deleteUntagged = options.deleteUntagged ?? false;
  const delayMs = options.delayMs ?? 0;
  const started = performance.now();
  const progress = {
    phase: "mark" as "mark" | "sweep",
    repositories: 0,
    blobs: 0,
    candidates: 0,
    bytesToFree: 0,
    toSweep: 0,
    swept: 0,
    sweepStartedMs: 0,
  };
  const report = (): void =>
    options.progress?.({ ...progress, elapsedMs: performance.now() - started });
  const youngSince = delayMs > 0 ? (await backendNow(context)) - delayMs - CLOCK_SLACK_MS : null;
  const sweeper = new Sweeper(context, { youngSince, dryRun, log, signal: options.signal });
  if (!dryRun && youngSince !== null) await sweeper.recover();

  const repositories: string[] = [];
  await eachRepository(context.driver, (name) => void repositories.push(name));

  const marked = new Set<Digest>();
  const layerLinks = new Map<Digest, string[]>();
  const unkept: { graph: RepositoryManifestGraph; digest: Digest }[] = [];
  for (const name of repositories) {
    options.signal?.throwIfAborted();
    const graph = await loadRepository(context, name, options.ignoredTags?.get(name));
    const untaggedHere = deleteUntagged || (options.untaggedIn?.(name) ?? false);
    const young = new Set<Digest>();
    if (untaggedHere) {
      await eachLimited([...graph.parsed.values()], PARALLEL, async (parsed) => {
        if (!graph.tagged.has(parsed.digest) && (await sweeper.manifestIsYoung(name, parsed))) {
          young.add(parsed.digest);
        }
      });
    }
    const kept = keptManifests(graph, untaggedHere, young);
    for (const digest of graph.manifests.keys()) {
      if (kept.has(digest)) continue;
      log(`${name}: manifest eligible for deletion: ${digest}`);
      unkept.push({ graph, digest });
    }
    markBlobs(graph, kept, marked, log);
    for (const link of await digestsBelow(context.driver, paths.layers(name))) {
      const repos = layerLinks.get(link.digest) ?? [];
      repos.push(name);
      layerLinks.set(link.digest, repos);
    }
    progress.repositories++;
    report();
  }

  const deletedManifests = await sweeper.sweepManifests(unkept, marked);
  progress.phase = "sweep";
  const candidates: ParsedDigest[] = [];
  for await (const digest of context.blobs.enumerate()) {
    progress.blobs++;
    if (marked.has(digest.digest)) continue;
    candidates.push(digest);
  }
  progress.toSweep = candidates.length;
  progress.sweepStartedMs = performance.now() - started;
  report();
  const deletedBlobs: Digest[] = [];
  let freedBytes = 0;
  // Blobs are swept independently of each other, several at a time; each one's steps in order.
  await eachLimited(candidates, PARALLEL / 2, async (digest) => {
    options.signal?.throwIfAborted();
    const outcome = await sweeper.sweepBlob(digest, layerLinks.get(digest.digest) ?? []);
    progress.swept++;
    if (outcome === undefined) return report();
    progress.candidates++;
    progress.bytesToFree += outcome.size;
    if (outcome.removed) {
      deletedBlobs.push(digest.digest);
      freedBytes += dryRun ? 0 : outcome.size;
    }
    report();
  });
  deletedBlobs.sort();
  if (!dryRun && youngSince !== null) await sweeper.cleanRecords();
  log(
    `${marked.size} blobs marked, ${deletedBlobs.length} blobs and ${deletedManifests.length} manifests ${dryRun ? "eligible for deletion" : "deleted"}` +
      (dryRun ? `, ${progress.bytesToFree} bytes would be freed` : `, ${freedBytes} bytes freed`),
  );
  return {
    markedBlobs: marked.size,
    deletedBlobs,
    deletedManifests,
    freedBytes,
    restoredBlobs: sweeper.restoredBlobs,
    restoredManifests: sweeper.restoredManifests,
  };
}
