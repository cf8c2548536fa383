// Retention (config `storage.retention`, docs/retention.md): which tags stay. Per repository, the
// first policy whose patterns match its name decides: a tag is kept when any of its keep rules
// keeps it (one of the `mostRecent` pushed, a name matching one of `patterns`, pushed within
// `pushedWithin`, pulled within `pulledWithin`); a policy without keep rules keeps every tag.
// Immutable tags are always kept. The other tags are untagged here; what they alone reached goes
// with the garbage collection that follows (src/server/retention.ts), which keeps an index's
// children and the referrers of every kept manifest.
//
// Push times are the modification times of the tags' current links (every push rewrites them);
// pull times come from the PullRecord (pulls.ts). A tag is untagged only if it still points where
// it did and was not pushed since it was looked at: a push racing with retention wins.

import { eachRepository } from "./catalog.js";
import type { StorageContext } from "./context.js";
import { unlessNotFound } from "./blobstore.js";
import { paths } from "./paths.js";
import type { PullRecord, PullTimes } from "./pulls.js";
import { repositoryMatcher } from "./quota.js";
import type { TagStore } from "./tagstore.js";
import type { Digest } from "./types.js";

/** One policy of `storage.retention.policies`. */
export interface RetentionPolicy {
  /** Glob patterns on repository names (`team-a/**`). */
  repositories: string[];
  keep: {
    /** Keep this many most recently pushed tags. */
    mostRecent?: number;
    /** Keep the tags matching one of these regular expressions. */
    patterns?: string[];
    /** Keep the tags pushed less than this long ago. */
    pushedWithinMs?: number;
    /** Keep the tags pulled (by tag, or the manifest they point at by digest) less than this long ago. */
    pulledWithinMs?: number;
  };
  /** Also remove the manifests no tag reaches any longer (in the collection that follows). */
  deleteUntagged: boolean;
}

/** Options of one retention run. */
export interface RetentionOptions {
  /** Decide and report, untag nothing. */
  dryRun?: boolean;
  /** Where pull times come from; without one no tag counts as pulled. */
  pulls?: PullRecord;
  /** A line per decision. */
  log?: (line: string) => void;
  /** Called after each repository with how many were looked at. */
  progress?: (repositories: number) => void;
  signal?: AbortSignal;
  /** The time to measure `pushedWithin` and `pulledWithin` from; default now. */
  now?: number;
}

/** One tag's fate. */
export interface RetentionDecision {
  repository: string;
  tag: string;
  digest: Digest;
  pushedAt: Date;
  pulledAt?: Date;
  /** Why it stays (`mostRecent`, `patterns`, `pushedWithin`, `pulledWithin`, `immutable`, `no keep rules`). */
  keptBy?: string;
  /** False when a push moved or re-pushed the tag meanwhile (so it stayed). */
  removed?: boolean;
}

/** What a retention run decided and did. */
export interface RetentionResult {
  /** Repositories a policy matched. */
  repositories: string[];
  kept: RetentionDecision[];
  /** The tags untagged (or, in a dry run, that would be). */
  removed: RetentionDecision[];
  /** Repositories whose policy says deleteUntagged. */
  deleteUntaggedIn: Set<string>;
}

interface Candidate {
  tag: string;
  digest: Digest;
  pushedAt: Date;
  pulledAt: number | undefined;
}

/** Why `policy` keeps `candidate` (its rank among the repository's tags, newest first), if it does. */
function keptBy(
  policy: RetentionPolicy,
  patterns: RegExp[],
  candidate: Candidate,
  rank: number,
  now: number,
): string | undefined {
  const { mostRecent, pushedWithinMs, pulledWithinMs } = policy.keep;
  if (mostRecent !== undefined && rank < mostRecent) return "mostRecent";
  if (patterns.some((pattern) => pattern.test(candidate.tag))) return "patterns";
  if (pushedWithinMs !== undefined && now - candidate.pushedAt.getTime() <= pushedWithinMs) {
    return "pushedWithin";
  }
  if (
    pulledWithinMs !== undefined &&
    candidate.pulledAt !== undefined &&
    now - candidate.pulledAt <= pulledWithinMs
  ) {
    return "pulledWithin";
  }
  return undefined;
}

function hasKeepRules(policy: RetentionPolicy): boolean {
  const { mostRecent, patterns, pushedWithinMs, pulledWithinMs } = policy.keep;
  return (
    mostRecent !== undefined ||
    (patterns?.length ?? 0) > 0 ||
    pushedWithinMs !== undefined ||
    pulledWithinMs !== undefined
  );
}

/** The tags of one repository with their targets, push and pull times. */
async function candidates(
  context: StorageContext,
  name: string,
  tags: TagStore,
  pulls: PullTimes,
): Promise<Candidate[]> {
  const current = await tags.currentLinks();
  const result: Candidate[] = [];
  for (const [tag, digest] of current) {
    const info = await unlessNotFound(context.driver.stat(paths.tagCurrentLink(name, tag)));
    if (info === undefined) continue;
    const pulled = Math.max(pulls.get(tag) ?? 0, pulls.get(digest) ?? 0);
    result.push({ tag, digest, pushedAt: info.modTime, pulledAt: pulled || undefined });
  }
  // Newest first; equal times by name, so that runs decide alike.
  return result.sort(
    (a, b) => b.pushedAt.getTime() - a.pushedAt.getTime() || (a.tag < b.tag ? -1 : 1),
  );
}

/** Applies `policies` to every repository of the registry (see the top of this file). */
export async function applyRetention(
  context: StorageContext,
  tagStore: (repository: string) => TagStore,
  policies: readonly RetentionPolicy[],
  options: RetentionOptions = {},
): Promise<RetentionResult> {
  const log = options.log ?? (() => undefined);
  const now = options.now ?? Date.now();
  const compiled = policies.map((policy) => ({
    policy,
    matches: repositoryMatcher(policy.repositories),
    patterns: (policy.keep.patterns ?? []).map((source) => new RegExp(source)),
  }));
  const names: string[] = [];
  await eachRepository(context.driver, (name) => {
    if (compiled.some(({ matches }) => matches(name))) names.push(name);
  });
  const result: RetentionResult = {
    repositories: names,
    kept: [],
    removed: [],
    deleteUntaggedIn: new Set(),
  };
  let done = 0;
  for (const name of names) {
    options.signal?.throwIfAborted();
    const { policy, patterns } = compiled.find(({ matches }) => matches(name))!;
    if (policy.deleteUntagged) result.deleteUntaggedIn.add(name);
    const tags = tagStore(name);
    const pulls = (await options.pulls?.times(name)) ?? new Map<string, number>();
    const all = await candidates(context, name, tags, pulls);
    for (const [rank, candidate] of all.entries()) {
      const decision: RetentionDecision = {
        repository: name,
        tag: candidate.tag,
        digest: candidate.digest,
        pushedAt: candidate.pushedAt,
        ...(candidate.pulledAt === undefined ? {} : { pulledAt: new Date(candidate.pulledAt) }),
      };
      const reason =
        tags.immutableRule(candidate.tag) !== undefined
          ? "immutable"
          : hasKeepRules(policy)
            ? keptBy(policy, patterns, candidate, rank, now)
            : "no keep rules";
      if (reason !== undefined) {
        result.kept.push({ ...decision, keptBy: reason });
        continue;
      }
      const pulled = candidate.pulledAt === undefined ? "never" : decision.pulledAt!.toISOString();
      const what = `${name}:${candidate.tag} (${candidate.digest}, pushed ${candidate.pushedAt.toISOString()}, last pulled ${pulled})`;
      if (options.dryRun) {
        log(`retention: would untag ${what}`);
        result.removed.push(decision);
        continue;
      }
      decision.removed = await tags.untagIfUnchanged(
        candidate.tag,
        candidate.digest,
        candidate.pushedAt,
      );
      if (decision.removed) {
        log(`retention: untagged ${what}`);
        result.removed.push(decision);
      } else {
        log(`retention: kept ${name}:${candidate.tag}: pushed again meanwhile`);
        result.kept.push({ ...decision, keptBy: "pushed meanwhile" });
      }
    }
    options.progress?.(++done);
  }
  return result;
}
