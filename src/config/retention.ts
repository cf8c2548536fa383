// Berth's storage policies (docs/retention.md): `storage.retention` (which tags stay),
// `storage.tags.immutable` (tags that never move) and `storage.quotas` (bytes per namespace).
// Their shapes are fixed by issue 19 and read here exactly as written there.

import type { QuotaRule, RetentionPolicy } from "../storage/index.js";
import { parseDuration } from "./duration.js";
import { isMapping, type ConfigReader, type Mapping } from "./reader.js";

/** `storage.retention`. */
export interface RetentionConfig {
  /** Time between retention runs in `berth serve` (when there are policies). Default 24h. */
  intervalMs: number;
  /** Log what would go, untag and delete nothing. Default false. */
  dryRun: boolean;
  /** The policies, in order: a repository follows the first one matching its name. */
  policies: RetentionPolicy[];
}

const units: Record<string, number> = {
  "": 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Bytes in `50GiB`, `512 MiB`, `1000` (KiB, MiB, GiB, TiB are powers of 1024); else undefined. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === "number")
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(value);
  const unit = match === null ? undefined : units[match[2]!.toLowerCase()];
  if (match === null || unit === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Milliseconds in `30d`, `12h`, `1d12h` (Go durations plus days); else undefined. */
export function parseRetentionDuration(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^\s*(?:(\d+)d)?(.*?)\s*$/.exec(value)!;
  const days = Number(match[1] ?? 0) * 86_400_000;
  if (match[2] === "") return match[1] === undefined ? undefined : days;
  const rest = parseDuration(match[2]!);
  return rest === undefined || rest < 0 ? undefined : days + rest;
}

/** A list of regular expressions at `key`, each checked to compile. */
function regexps(reader: ConfigReader, value: unknown, key: string): string[] {
  const sources = reader.stringList(value, key);
  return sources.filter((source, i) => {
    try {
      new RegExp(source);
      return true;
    } catch (error) {
      reader.fail(`${key}[${i}]`, `not a regular expression: ${(error as Error).message}`);
      return false;
    }
  });
}

/** A non-empty list of repository patterns at `key`. */
function repositoryPatterns(reader: ConfigReader, value: unknown, key: string): string[] {
  const patterns = reader.stringList(value, key);
  if (value !== undefined && patterns.length === 0 && Array.isArray(value) && value.length === 0) {
    reader.fail(key, 'must list at least one repository pattern, such as "team-a/**"');
  } else if (value === undefined || value === null) {
    reader.fail(key, 'is required: the repository patterns, such as ["team-a/**"]');
  }
  return patterns;
}

function readDuration(reader: ConfigReader, value: unknown, key: string): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const ms = parseRetentionDuration(value);
  if (ms === undefined)
    reader.fail(key, `${JSON.stringify(value)} is not a duration such as 30d or 12h`);
  return ms;
}

function readPolicy(reader: ConfigReader, value: unknown, key: string): RetentionPolicy {
  const policy = reader.mapping(value, key);
  reader.unknownKeys(policy, key, ["repositories", "keep", "deleteUntagged"]);
  const keep = reader.mapping(policy.keep, `${key}.keep`);
  reader.unknownKeys(keep, `${key}.keep`, [
    "mostRecent",
    "patterns",
    "pushedWithin",
    "pulledWithin",
  ]);
  const mostRecent =
    keep.mostRecent === undefined || keep.mostRecent === null
      ? undefined
      : reader.integer(keep.mostRecent, `${key}.keep.mostRecent`, 0);
  const pushedWithinMs = readDuration(reader, keep.pushedWithin, `${key}.keep.pushedWithin`);
  const pulledWithinMs = readDuration(reader, keep.pulledWithin, `${key}.keep.pulledWithin`);
  return {
    repositories: repositoryPatterns(reader, policy.repositories, `${key}.repositories`),
    keep: {
      ...(mostRecent === undefined ? {} : { mostRecent }),
      patterns: regexps(reader, keep.patterns, `${key}.keep.patterns`),
      ...(pushedWithinMs === undefined ? {} : { pushedWithinMs }),
      ...(pulledWithinMs === undefined ? {} : { pulledWithinMs }),
    },
    deleteUntagged: reader.boolean(policy.deleteUntagged, `${key}.deleteUntagged`, false),
  };
}

/** A list at `key` (absent: empty); each item read by `item`. */
function list<T>(
  reader: ConfigReader,
  value: unknown,
  key: string,
  item: (value: unknown, key: string) => T,
): T[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    reader.fail(key, `must be a list, got ${JSON.stringify(value)}`);
    return [];
  }
  return value.map((entry, i) => item(entry, `${key}[${i}]`));
}

export function readRetention(reader: ConfigReader, storage: Mapping): RetentionConfig {
  const key = "storage.retention";
  const retention = reader.mapping(storage.retention, key);
  reader.unknownKeys(retention, key, ["interval", "dryrun", "policies"]);
  const intervalMs = reader.duration(retention.interval, `${key}.interval`, 24 * 3_600_000);
  if (intervalMs <= 0) reader.fail(`${key}.interval`, "must be more than 0");
  return {
    intervalMs,
    dryRun: reader.boolean(retention.dryrun, `${key}.dryrun`, false),
    policies: list(reader, retention.policies, `${key}.policies`, (value, at) =>
      readPolicy(reader, value, at),
    ),
  };
}

export function readImmutableTags(reader: ConfigReader, storage: Mapping): string[] {
  const tags = reader.mapping(storage.tags, "storage.tags");
  reader.unknownKeys(tags, "storage.tags", ["immutable"]);
  return regexps(reader, tags.immutable, "storage.tags.immutable");
}

export function readQuotas(reader: ConfigReader, storage: Mapping): QuotaRule[] {
  return list(reader, storage.quotas, "storage.quotas", (value, key) => {
    if (!isMapping(value)) {
      reader.fail(
        key,
        `must be a mapping with repositories and bytes, got ${JSON.stringify(value)}`,
      );
      return { repositories: [], bytes: 0 };
    }
    reader.unknownKeys(value, key, ["repositories", "bytes"]);
    const bytes = parseSize(value.bytes);
    if (bytes === undefined) {
      reader.fail(
        `${key}.bytes`,
        `${JSON.stringify(value.bytes)} is not a size: a number of bytes or one with KiB, MiB, GiB or TiB (50GiB)`,
      );
    }
    return {
      repositories: repositoryPatterns(reader, value.repositories, `${key}.repositories`),
      bytes: bytes ?? 0,
    };
  });
}
