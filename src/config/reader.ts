// Reading one config tree: the driver layer's value rules (ValueReader) plus what config.yml adds,
// mappings, unknown keys, durations and lists, with every problem and warning collected under its
// key (and the environment variable that set it) so that they are reported together.

import { closest, distance } from "fastest-levenshtein";
import { ValueReader } from "../driver/index.js";
import { parseDuration } from "./duration.js";

/** A mapping of config.yml as parsed. */
export type Mapping = Record<string, unknown>;

export function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One thing wrong with a config, with the key it is about. */
export interface ConfigProblem {
  key: string;
  message: string;
}

/** An invalid config. The message has one line per problem, each starting with its key. */
export class ConfigError extends Error {
  readonly code = "ERR_BERTH_CONFIG";
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[], source?: string) {
    const where = source ? ` in ${source}` : "";
    super(
      problems.length === 1
        ? `invalid configuration${where}: ${problems[0]!.message}`
        : `invalid configuration${where}:\n${problems.map((p) => `  ${p.message}`).join("\n")}`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Reads one config tree, collecting problems and warnings with their keys. */
export class ConfigReader extends ValueReader {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: string[] = [];

  constructor(private readonly origins: Map<string, string>) {
    super();
  }

  /** `key`, or `key (REGISTRY_...)` when an environment variable set it. */
  private label(key: string): string {
    const variable = this.origins.get(key);
    return variable === undefined ? key : `${key} (${variable})`;
  }

  protected override report(key: string, message: string): void {
    this.fail(key, message);
  }

  fail(key: string, message: string): void {
    this.problems.push({ key, message: `${this.label(key)}: ${message}` });
  }

  warn(key: string, message: string): void {
    this.warnings.push(`${this.label(key)}: ${message}`);
  }

  /** A mapping at `key`; an absent or empty (null) one is `{}`. */
  mapping(value: unknown, key: string): Mapping {
    if (value === undefined || value === null) return {};
    if (isMapping(value)) return value;
    this.fail(key, `must be a mapping, got ${JSON.stringify(value)}`);
    return {};
  }

  /**
   * Warns about the keys of `section` outside `known`. A key that looks like one of `security`
   * (sections that protect the registry, such as `auth` or `http.tls`: the same name in another
   * case, a name starting with it, or one letter off) is an error instead: serving without the
   * protection the config meant to ask for would open the registry.
   */
  unknownKeys(
    section: Mapping,
    key: string,
    known: readonly string[],
    security: readonly string[] = [],
  ): void {
    for (const name of Object.keys(section)) {
      if (known.includes(name)) continue;
      const path = key === "" ? name : `${key}.${name}`;
      const meant = security.find((secure) => looksLike(name, secure));
      if (meant === undefined) {
        this.warn(path, "unknown key, ignored");
        continue;
      }
      const intended = key === "" ? meant : `${key}.${meant}`;
      this.fail(
        path,
        `looks like the security section ${intended} but is not it (keys are lower case); ` +
          "refusing to start without the protection it may have meant to configure",
      );
    }
  }

  /** A Go duration string such as `24h` or `10m`, in milliseconds. */
  duration(value: unknown, key: string, fallbackMs: number): number {
    if (value === undefined || value === null || value === "") return fallbackMs;
    const ms = typeof value === "string" ? parseDuration(value) : undefined;
    if (ms === undefined || ms < 0) {
      this.fail(key, `${JSON.stringify(value)} is not a duration such as 24h, 10m or 30s`);
      return fallbackMs;
    }
    return ms;
  }

  /** A list of strings; a single string is a list of one. */
  stringList(value: unknown, key: string): string[] {
    if (value === undefined || value === null) return [];
    if (typeof value === "string") return [value];
    if (
      Array.isArray(value) &&
      value.every((item) => typeof item === "string" || typeof item === "number")
    ) {
      return value.map(String);
    }
    this.fail(key, `must be a list of strings, got ${JSON.stringify(value)}`);
    return [];
  }
}

/** Whether the unknown key `name` looks like the known key `known` (see unknownKeys). */
function looksLike(name: string, known: string): boolean {
  const lower = name.toLowerCase();
  const letters = lower.replace(/[^a-z0-9]/g, "");
  if (letters === known || letters.startsWith(known)) return true;
  if (known === "tls" && (letters === "ssl" || letters.startsWith("ssl"))) return true;
  return known.length >= 4 && distance(lower, known) <= 1;
}

/** The name of `known` closest to `name` when it is a likely misspelling of it, else undefined. */
export function closeName(name: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined;
  const lower = name.toLowerCase();
  const candidate = closest(lower, [...known]);
  const close =
    candidate.startsWith(lower) ||
    lower.startsWith(candidate) ||
    distance(lower, candidate) <= Math.max(1, Math.floor(candidate.length / 4));
  return close ? candidate : undefined;
}
