// Storage quotas (config `storage.quotas`): per repository pattern, a limit on the bytes of the
// distinct blobs the namespace's manifests reference (each manifest's own bytes, its config and
// layers; a blob shared by two repositories of one namespace counts once, in each namespace that
// references it).
//
// Counting is online: a namespace is counted from storage once (its manifests' references and a
// cached stat per blob), then every accepted manifest PUT adds what it brings. A delete, a garbage
// collection or retention drops the count, and the next PUT (or `berth usage`) counts again; so
// does a count older than RECOUNT_MS, so that replicas see each other's pushes.
//
// Admission: a manifest PUT to a covered repository is checked and stored while holding its
// namespaces' locks in this process (in rule order, so no two PUTs wait on each other in a cycle),
// so within one process concurrent pushes never take a namespace over its limit. Across replicas,
// each checks against its own count, fresh from storage at most RECOUNT_MS ago: a namespace can go
// over by what other replicas accepted since (docs/retention.md).

import picomatch from "picomatch";
import type { StorageContext } from "./context.js";
import { parseDigest, tryParseDigest } from "./digest.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { eachLimited, loadRepository } from "./gc.js";
import { eachRepository } from "./catalog.js";
import type { Digest, QuotaRule, QuotaUsage } from "./types.js";

/** A count older than this is redone from storage before the next admission. */
export const RECOUNT_MS = 60_000;

/** Blob stats in flight at once while counting a namespace. */
const COUNT_PARALLEL = 16;

/** A repository pattern matcher: picomatch's globs, `**` crossing components. */
export function repositoryMatcher(patterns: readonly string[]): (name: string) => boolean {
  return picomatch([...patterns], { dot: true });
}

interface Namespace {
  rule: QuotaRule;
  index: number;
  matches: (name: string) => boolean;
  /** The distinct blobs counted, with their sizes; undefined until counted (or after a drop). */
  blobs: Map<Digest, number> | undefined;
  bytes: number;
  repositories: number;
  countedAt: number;
}

/** `50 GiB` for log and error lines. */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${+value.toFixed(2)} ${units[unit]} (${bytes} bytes)`;
}

function denied(namespace: Namespace, message: string, adding: number): RegistryError {
  return new RegistryError(RegistryErrorCode.Denied, message, {
    quota: namespace.rule.repositories,
    used: namespace.bytes,
    adding,
    limit: namespace.rule.bytes,
  });
}

/** The quotas of one registry: their counts and the admission of manifest PUTs. */
export class Quotas {
  private readonly namespaces: Namespace[];

  constructor(rules: readonly QuotaRule[]) {
    this.namespaces = rules.map((rule, index) => ({
      rule,
      index,
      matches: repositoryMatcher(rule.repositories),
      blobs: undefined,
      bytes: 0,
      repositories: 0,
      countedAt: 0,
    }));
  }

  /** True when some quota covers `repository`. */
  covers(repository: string): boolean {
    return this.namespaces.some((namespace) => namespace.matches(repository));
  }

  /** DENIED when a blob of `size` bytes alone is over the limit of a quota covering `repository`. */
  checkBlob(repository: string, size: number): void {
    for (const namespace of this.namespaces) {
      if (!namespace.matches(repository) || size <= namespace.rule.bytes) continue;
      throw denied(
        namespace,
        `quota exceeded: the blob is ${formatBytes(size)}, more than the limit of ` +
          `${formatBytes(namespace.rule.bytes)} of ${namespace.rule.repositories.join(", ")}`,
        size,
      );
    }
  }

  /**
   * Runs `store` (a manifest PUT to `repository`) when the blobs `references` lists (digest →
   * size, the manifest's own included) keep every covering namespace within its limit, then counts
   * them; DENIED naming usage and limit otherwise. Serialized per namespace in this process.
   */
  async admit<T>(
    context: StorageContext,
    repository: string,
    references: () => Promise<Map<Digest, number>>,
    store: () => Promise<T>,
  ): Promise<T> {
    const covering = this.namespaces.filter((namespace) => namespace.matches(repository));
    if (covering.length === 0) return store();
    const locked = covering.reduceRight<() => Promise<T>>(
      (inner, namespace) => () => context.queue.run(`quota:${namespace.index}`, inner),
      async () => {
        const blobs = await references();
        for (const namespace of covering) {
          const counted = await this.counted(context, namespace);
          let adding = 0;
          for (const [digest, size] of blobs) if (!counted.has(digest)) adding += size;
          if (adding > 0 && namespace.bytes + adding > namespace.rule.bytes) {
            throw denied(
              namespace,
              `quota exceeded for ${namespace.rule.repositories.join(", ")}: ` +
                `${formatBytes(namespace.bytes)} used + ${formatBytes(adding)} new > limit ` +
                `${formatBytes(namespace.rule.bytes)}`,
              adding,
            );
          }
        }
        const result = await store();
        for (const namespace of covering) {
          const counted = namespace.blobs;
          if (counted === undefined) continue;
          for (const [digest, size] of blobs) {
            if (counted.has(digest)) continue;
            counted.set(digest, size);
            namespace.bytes += size;
          }
        }
        return result;
      },
    );
    return locked();
  }

  /** Forgets the counts of the namespaces covering `repository` (all without one): recount next. */
  drop(repository?: string): void {
    for (const namespace of this.namespaces) {
      if (repository === undefined || namespace.matches(repository)) namespace.blobs = undefined;
    }
  }

  /** Every quota counted afresh from storage. */
  async usage(context: StorageContext): Promise<QuotaUsage[]> {
    const result: QuotaUsage[] = [];
    for (const namespace of this.namespaces) {
      await context.queue.run(`quota:${namespace.index}`, () => this.count(context, namespace));
      result.push(this.report(namespace));
    }
    return result;
  }

  /** The counts as they are, counting from storage only the namespaces not counted (metrics). */
  async current(context: StorageContext): Promise<QuotaUsage[]> {
    const result: QuotaUsage[] = [];
    for (const namespace of this.namespaces) {
      if (namespace.blobs === undefined) {
        await context.queue.run(`quota:${namespace.index}`, async () => {
          if (namespace.blobs === undefined) await this.count(context, namespace);
        });
      }
      result.push(this.report(namespace));
    }
    return result;
  }

  private report(namespace: Namespace): QuotaUsage {
    return {
      repositories: namespace.rule.repositories,
      bytes: namespace.bytes,
      limit: namespace.rule.bytes,
      blobs: namespace.blobs?.size ?? 0,
      repositoryCount: namespace.repositories,
    };
  }

  /** The namespace's counted blobs, counting it first when not counted or counted long ago. */
  private async counted(
    context: StorageContext,
    namespace: Namespace,
  ): Promise<Map<Digest, number>> {
    if (namespace.blobs === undefined || Date.now() - namespace.countedAt > RECOUNT_MS) {
      await this.count(context, namespace);
    }
    return namespace.blobs!;
  }

  /** Counts a namespace from storage: every covered repository's manifests and what they reference. */
  private async count(context: StorageContext, namespace: Namespace): Promise<void> {
    const started = Date.now();
    const names: string[] = [];
    await eachRepository(context.driver, (name) => {
      if (namespace.matches(name)) names.push(name);
    });
    const digests = new Set<Digest>();
    for (const name of names) {
      const graph = await loadRepository(context, name);
      for (const [digest, references] of graph.manifests) {
        digests.add(digest);
        for (const blob of references?.blobs ?? []) digests.add(blob);
      }
    }
    const blobs = new Map<Digest, number>();
    await eachLimited([...digests], COUNT_PARALLEL, async (digest) => {
      const parsed = tryParseDigest(digest);
      const info = parsed === undefined ? undefined : await context.blobs.stat(parsed);
      if (info !== undefined) blobs.set(digest, info.size);
    });
    namespace.blobs = blobs;
    namespace.bytes = [...blobs.values()].reduce((sum, size) => sum + size, 0);
    namespace.repositories = names.length;
    namespace.countedAt = started;
  }
}

/** The blobs a manifest brings, with their stored sizes: itself, its config, layers and children. */
export async function manifestBlobs(
  context: StorageContext,
  manifest: { digest: Digest; size: number; references: Digest[] },
): Promise<Map<Digest, number>> {
  const blobs = new Map<Digest, number>([[manifest.digest, manifest.size]]);
  await eachLimited(manifest.references, COUNT_PARALLEL, async (digest) => {
    const info = await context.blobs.stat(parseDigest(digest));
    if (info !== undefined) blobs.set(digest, info.size);
  });
  return blobs;
}
