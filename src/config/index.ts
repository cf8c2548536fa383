// The config layer's public surface: reading config.yml (distribution's shape) with environment
// overrides into a checked, typed BerthConfig.

import { readFile } from "node:fs/promises";
import { isPair, isScalar, LineCounter, parseDocument, visit, type Document } from "yaml";
import { applyEnvironment } from "./environment.js";
import { readConfigTree, type BerthConfig } from "./config.js";
import { ConfigError } from "./reader.js";

export { type BerthConfig } from "./config.js";
export { ConfigError, type ConfigProblem } from "./reader.js";
export {
  parseAddress,
  type DebugConfig,
  type HttpConfig,
  type HttpLimits,
  type HttpTimeouts,
  type TlsConfig,
} from "./http.js";
export { type LogConfig, type LogLevel } from "./log.js";
export {
  type FileCheckConfig,
  type HealthConfig,
  type HttpCheckConfig,
  type StorageDriverCheckConfig,
  type TcpCheckConfig,
} from "./health.js";
export { type StorageConfig, type GcConfig } from "./storage.js";
export { parseRetentionDuration, parseSize, type RetentionConfig } from "./retention.js";
export { DEFAULT_PROXY_TTL_MS, type ProxyConfig, type UpstreamConfig } from "./proxy.js";
export { type RedisConfig } from "./redis.js";
export { parseDuration, formatDuration } from "./duration.js";
export { type UiConfig } from "./ui.js";

/** The environment a config reads its overrides from: variable name → value. */
export type Environment = Record<string, string | undefined>;

/**
 * The config `berth serve` runs without a config file: filesystem storage in `./data`, listening
 * on 127.0.0.1:5000, with deletes enabled and the web UI at `/`. This is the developer's registry of `npm start`, where
 * every endpoint of the spec (the conformance suite's content management included) should work;
 * a config.yml keeps distribution's default of deletes off unless `storage.delete.enabled` is set,
 * and `REGISTRY_STORAGE_DELETE_ENABLED=false` turns them off here (as `REGISTRY_UI_ENABLED=false`
 * turns off the UI, which a config.yml must ask for).
 */
export function defaultConfigTree(): Record<string, unknown> {
  return {
    version: "0.1",
    storage: { filesystem: { rootdirectory: "./data" }, delete: { enabled: true } },
    http: { addr: "127.0.0.1:5000" },
    ui: { enabled: true, path: "/" },
  };
}

/**
 * Checks a config given as an object in config.yml's shape (`{ version: "0.1", storage: {
 * filesystem: { rootdirectory } }, http: { addr } }`), applying the REGISTRY_* overrides of `env`
 * (none by default). Throws a ConfigError naming each bad key.
 */
export function resolveConfig(
  tree: Record<string, unknown>,
  env: Environment = {},
  source?: string,
): BerthConfig {
  if (typeof tree !== "object" || tree === null || Array.isArray(tree)) {
    throw new ConfigError(
      [{ key: "(top level)", message: "(top level): the config must be a mapping" }],
      source,
    );
  }
  const { tree: overridden, origins } = applyEnvironment(tree, env);
  return readConfigTree(overridden, origins, source);
}

/**
 * Parses config.yml text and applies the REGISTRY_* overrides of `env`. Throws a ConfigError for
 * YAML that does not parse (with line and column) and for every bad key.
 */
export function parseConfig(
  yamlText: string,
  env: Environment = process.env,
  source?: string,
): BerthConfig {
  const lineCounter = new LineCounter();
  // Go's yaml.v2, which reads distribution's config, takes a repeated key: the later value wins.
  const document = parseDocument(yamlText, { uniqueKeys: false, lineCounter });
  if (document.errors.length > 0) {
    const problems = document.errors.map((error) => {
      const at = error.linePos?.[0];
      const key = at ? `line ${at.line}, column ${at.col}` : "(yaml)";
      // The first line of yaml's message repeats the position; keep only the reason.
      const reason = error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      return { key, message: `${key}: ${reason}` };
    });
    throw new ConfigError(problems, source);
  }
  const tree: unknown = document.toJS() ?? {};
  const config = resolveConfig(tree as Record<string, unknown>, env, source);
  config.warnings.unshift(...repeatedKeys(document, lineCounter));
  return config;
}

/** A warning for each key repeated in its mapping, naming it and the line of the repetition. */
function repeatedKeys(document: Document, lineCounter: LineCounter): string[] {
  const warnings: string[] = [];
  visit(document, {
    Map(_, map, path) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const name = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (name === undefined) continue;
        if (!seen.has(name)) {
          seen.add(name);
          continue;
        }
        const parents = path
          .filter(isPair)
          .map((parent) => String(isScalar(parent.key) ? parent.key.value : "?"));
        const key = [...parents, name].join(".");
        const offset = isScalar(pair.key) ? (pair.key.range?.[0] ?? 0) : 0;
        const { line } = lineCounter.linePos(offset);
        warnings.push(
          `${key}: repeated at line ${line}; the later value is used, as distribution does`,
        );
      }
    },
  });
  return warnings;
}

/**
 * Reads the config file `file` (or, with none, the default config: filesystem storage in ./data on
 * 127.0.0.1:5000) and applies the REGISTRY_* overrides of `env`.
 */
export async function loadConfig(
  file?: string,
  env: Environment = process.env,
): Promise<BerthConfig> {
  if (file === undefined) return resolveConfig(defaultConfigTree(), env);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT"
        ? "no such file"
        : (error as Error).message;
    throw new ConfigError([
      { key: file, message: `${file}: cannot read the config file: ${reason}` },
    ]);
  }
  return parseConfig(text, env, file);
}
