// config.yml in distribution's shape, checked and turned into a typed BerthConfig. Every key
// distribution documents is known here: the ones Berth implements are read, the ones it does not
// are reported as warnings (never silently dropped). Keys nobody knows are warnings too, as
// distribution treats unknown environment variables. Problems are collected and reported together,
// each naming its key (and the environment variable when one set it). Each section has its module:
// log.ts, storage.ts, http.ts, auth.ts, health.ts, proxy.ts, notifications.ts, ui.ts; the value
// rules are in reader.ts.

import type { AuthOptions } from "../auth/index.js";
import { readAuth } from "./auth.js";
import { readHealth, type HealthConfig } from "./health.js";
import { readHttp, type HttpConfig } from "./http.js";
import { readLog, type LogConfig } from "./log.js";
import { readProxy, type ProxyConfig } from "./proxy.js";
import { readNotifications } from "./notifications.js";
import type { NotificationsConfig } from "../notify/index.js";
import { ConfigError, ConfigReader, type Mapping } from "./reader.js";
import { readRedis, type RedisConfig } from "./redis.js";
import { readStorage, type StorageConfig } from "./storage.js";
import { readUi, type UiConfig } from "./ui.js";

/** A checked config.yml. Build one with parseConfig, loadConfig or resolveConfig. */
export interface BerthConfig {
  version: "0.1";
  log: LogConfig;
  storage: StorageConfig;
  http: HttpConfig;
  /** The redis section (for `storage.cache.blobdescriptor: redis`); undefined when absent. */
  redis: RedisConfig | undefined;
  /** The auth section; undefined when the registry is open (no `auth`). */
  auth: AuthOptions | undefined;
  health: HealthConfig;
  /** Pull-through caching: the upstreams (none for an ordinary registry). */
  proxy: ProxyConfig;
  notifications: NotificationsConfig;
  /** The web UI (Berth's own section). */
  ui: UiConfig;
  /** What the config had that Berth ignores, one message each, for the caller to log at start. */
  warnings: string[];
}

/** Keys distribution knows that Berth does not implement: ignored with a warning saying why. */
const ignoredTopLevel: Record<string, string> = {
  middleware: "storage, registry and repository middleware are not supported",
  reporting: "error reporting (bugsnag, newrelic) is not supported",
  compatibility: "schema1 manifests are not supported",
  validation: "manifest URL validation is not configurable",
  policy: "repository class policy is not supported",
  catalog: "the catalog page size is not configurable",
};

function readVersion(reader: ConfigReader, tree: Mapping): "0.1" {
  const version = tree.version;
  // YAML reads `version: 0.1` as the number 0.1.
  if (version === 0.1 || version === "0.1") return "0.1";
  if (version === undefined || version === null) {
    reader.fail("version", 'is required and must be "0.1"');
  } else {
    reader.fail("version", `unsupported version ${JSON.stringify(version)}, must be "0.1"`);
  }
  return "0.1";
}

function readIgnored(reader: ConfigReader, tree: Mapping): void {
  for (const [key, reason] of Object.entries(ignoredTopLevel)) {
    if (tree[key] !== undefined) reader.warn(key, `${reason}; ignored`);
  }
}

/**
 * Checks a config tree (config.yml as parsed, environment overrides applied) and returns the typed
 * config. `origins` maps keys to the environment variables that set them, for messages. Throws a
 * ConfigError listing every problem.
 */
export function readConfigTree(
  tree: Mapping,
  origins: Map<string, string> = new Map(),
  source?: string,
): BerthConfig {
  const reader = new ConfigReader(origins);
  const known = [
    "version",
    "log",
    "loglevel",
    "storage",
    "http",
    "auth",
    "health",
    "proxy",
    "redis",
    "notifications",
    "ui",
    ...Object.keys(ignoredTopLevel),
  ];
  reader.unknownKeys(tree, "", known, ["auth"]);
  const config: BerthConfig = {
    version: readVersion(reader, tree),
    log: readLog(reader, tree),
    storage: readStorage(reader, tree),
    http: readHttp(reader, tree),
    redis: readRedis(reader, tree),
    auth: readAuth(reader, tree),
    health: readHealth(reader, tree),
    proxy: readProxy(reader, tree),
    notifications: readNotifications(reader, tree),
    ui: readUi(reader, tree),
    warnings: reader.warnings,
  };
  readIgnored(reader, tree);
  if (config.storage.blobDescriptorCache === "redis" && config.redis === undefined) {
    reader.fail(
      "storage.cache.blobdescriptor",
      "is redis, but there is no redis section saying where Redis is (redis.addr)",
    );
  }
  if (reader.problems.length > 0) throw new ConfigError(reader.problems, source);
  return config;
}
