// config.yml in distribution's shape, checked and turned into a typed BerthConfig. Every key
// distribution documents is known here: the ones Berth implements are read, the ones it does not
// are reported as warnings (never silently dropped), except `auth`, which is an error because
// serving without the authentication a config asks for would open the registry. Keys nobody knows
// are warnings too, as distribution treats unknown environment variables. Problems are collected
// and reported together, each naming its key (and the environment variable when one set it).

import { isIP } from "node:net";
import { registeredDrivers, type DriverParameters } from "../driver/index.js";
import { formatDuration, parseDuration } from "./duration.js";

/** Log levels of config.yml (`log.level`). */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** The storage section: one driver and the registry's storage options. */
export interface StorageConfig {
  /** The driver name, the one key of `storage` that is not an option (`filesystem`, `s3`, ...). */
  driver: string;
  /** The driver's section as written (values from environment overrides are strings). */
  parameters: DriverParameters;
  /** `storage.delete.enabled`: allow deleting blobs and manifests. Default false. */
  deleteEnabled: boolean;
  /** False when `storage.redirect.disable` is true: blob GETs never redirect to the backend. */
  redirect: boolean;
  /** `storage.maintenance.readonly.enabled`: refuse every write. Default false. */
  readOnly: boolean;
  /** `storage.maintenance.uploadpurging`: removing uploads abandoned long ago, periodically. */
  uploadPurging: {
    enabled: boolean;
    /** Uploads started longer ago than this are removed. Default 168h. */
    ageMs: number;
    /** Time between purges. Default 24h. */
    intervalMs: number;
    /** Log what would be removed, remove nothing. */
    dryRun: boolean;
  };
}

/** The TLS options of `http.tls`. */
export interface TlsConfig {
  /** Path of the PEM certificate (chain). */
  certificate: string;
  /** Path of the PEM private key. */
  key: string;
  /** Paths of PEM CA bundles; when given, clients must present a certificate signed by one. */
  clientCAs: string[];
  /** The lowest TLS version accepted (`http.tls.minimumtls`), in Node's spelling. */
  minVersion: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
}

/** The http section. */
export interface HttpConfig {
  /** `http.addr` as written, `host:port`; an empty host listens on every interface. */
  addr: string;
  /** The host part of `addr` ("" for every interface). */
  hostname: string;
  /** The port part of `addr`; 0 picks a free port. */
  port: number;
  /** `http.host`: the registry's external URL; Location and Link headers become absolute. */
  host: string | undefined;
  /** `http.prefix` without its trailing slash ("" when none): the registry is served below it. */
  prefix: string;
  tls: TlsConfig | undefined;
  /** `http.headers`: added to every response. */
  headers: Record<string, string[]>;
  /** `http.draintimeout`: how long a stopping server waits for requests in flight. Default 10s. */
  drainTimeoutMs: number;
}

/** A checked config.yml. Build one with parseConfig, loadConfig or resolveConfig. */
export interface BerthConfig {
  version: "0.1";
  log: {
    level: LogLevel;
    /** `json` (the default) or `text` (one `key=value` line per entry). */
    formatter: "json" | "text";
    /** `log.fields`: added to every log entry. */
    fields: Record<string, unknown>;
    /** False when `log.accesslog.disabled` is true. */
    accessLog: boolean;
  };
  storage: StorageConfig;
  http: HttpConfig;
  /** What the config had that Berth ignores, one message each, for the caller to log at start. */
  warnings: string[];
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

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Keys distribution knows that Berth does not implement: ignored with a warning saying why. */
const ignoredTopLevel: Record<string, string> = {
  middleware: "storage, registry and repository middleware are not supported",
  reporting: "error reporting (bugsnag, newrelic) is not supported",
  notifications: "notifications are not supported",
  redis: "Berth has no redis cache",
  proxy: "pull-through caching is not supported; this registry serves only what is pushed to it",
  compatibility: "schema1 manifests are not supported",
  validation: "manifest URL validation is not configurable",
  policy: "repository class policy is not supported",
  catalog: "the catalog page size is not configurable",
};

const storageOptions = new Set(["maintenance", "cache", "delete", "redirect", "tag"]);

/** Reads one config tree, collecting problems and warnings with their keys. */
class ConfigReader {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: string[] = [];

  constructor(private readonly origins: Map<string, string>) {}

  /** `key`, or `key (REGISTRY_...)` when an environment variable set it. */
  private label(key: string): string {
    const variable = this.origins.get(key);
    return variable === undefined ? key : `${key} (${variable})`;
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

  /** Warns about the keys of `section` outside `known`. */
  unknownKeys(section: Mapping, key: string, known: readonly string[]): void {
    for (const name of Object.keys(section)) {
      if (!known.includes(name))
        this.warn(key === "" ? name : `${key}.${name}`, "unknown key, ignored");
    }
  }

  string(value: unknown, key: string, fallback: string): string {
    if (value === undefined || value === null) return fallback;
    if (typeof value === "string") return value;
    if (typeof value === "number") return String(value);
    this.fail(key, `must be a string, got ${JSON.stringify(value)}`);
    return fallback;
  }

  boolean(value: unknown, key: string, fallback: boolean): boolean {
    if (value === undefined || value === null || value === "") return fallback;
    if (typeof value === "boolean") return value;
    if (typeof value === "string") {
      const lower = value.trim().toLowerCase();
      if (lower === "true") return true;
      if (lower === "false") return false;
    }
    this.fail(key, `must be true or false, got ${JSON.stringify(value)}`);
    return fallback;
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

  oneOf<T extends string>(value: unknown, key: string, choices: readonly T[], fallback: T): T {
    if (value === undefined || value === null || value === "") return fallback;
    const text = typeof value === "string" ? value.trim().toLowerCase() : value;
    if (typeof text === "string" && (choices as readonly string[]).includes(text)) return text as T;
    this.fail(key, `must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`);
    return fallback;
  }
}

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

function readLog(reader: ConfigReader, tree: Mapping): BerthConfig["log"] {
  const log = reader.mapping(tree.log, "log");
  reader.unknownKeys(log, "log", [
    "level",
    "formatter",
    "fields",
    "accesslog",
    "hooks",
    "reportcaller",
  ]);
  const levels = ["error", "warn", "info", "debug"] as const;
  let level = reader.oneOf(log.level, "log.level", levels, "info");
  if (log.level === undefined && tree.loglevel !== undefined) {
    reader.warn("loglevel", "deprecated, use log.level");
    level = reader.oneOf(tree.loglevel, "loglevel", levels, "info");
  }
  let formatter = reader.oneOf(
    log.formatter,
    "log.formatter",
    ["json", "text", "logstash"],
    "json",
  );
  if (formatter === "logstash") {
    reader.warn("log.formatter", "logstash is written as json");
    formatter = "json";
  }
  if (log.hooks !== undefined) reader.warn("log.hooks", "log hooks are not supported, ignored");
  if (log.reportcaller !== undefined) reader.warn("log.reportcaller", "not supported, ignored");
  const accessLog = reader.mapping(log.accesslog, "log.accesslog");
  reader.unknownKeys(accessLog, "log.accesslog", ["disabled"]);
  return {
    level,
    formatter,
    fields: { ...reader.mapping(log.fields, "log.fields") },
    accessLog: !reader.boolean(accessLog.disabled, "log.accesslog.disabled", false),
  };
}

const defaultPurging: StorageConfig["uploadPurging"] = {
  enabled: true,
  ageMs: 168 * 3_600_000,
  intervalMs: 24 * 3_600_000,
  dryRun: false,
};

function readMaintenance(
  reader: ConfigReader,
  storage: Mapping,
): Pick<StorageConfig, "readOnly" | "uploadPurging"> {
  const maintenance = reader.mapping(storage.maintenance, "storage.maintenance");
  reader.unknownKeys(maintenance, "storage.maintenance", ["uploadpurging", "readonly"]);
  const key = "storage.maintenance.uploadpurging";
  const purging = reader.mapping(maintenance.uploadpurging, key);
  reader.unknownKeys(purging, key, ["enabled", "age", "interval", "dryrun"]);
  const uploadPurging = {
    enabled: reader.boolean(purging.enabled, `${key}.enabled`, defaultPurging.enabled),
    ageMs: reader.duration(purging.age, `${key}.age`, defaultPurging.ageMs),
    intervalMs: reader.duration(purging.interval, `${key}.interval`, defaultPurging.intervalMs),
    dryRun: reader.boolean(purging.dryrun, `${key}.dryrun`, defaultPurging.dryRun),
  };
  if (uploadPurging.enabled && uploadPurging.intervalMs <= 0) {
    reader.fail(
      `${key}.interval`,
      `must be more than 0, got ${formatDuration(uploadPurging.intervalMs)}`,
    );
  }
  const readonly = reader.mapping(maintenance.readonly, "storage.maintenance.readonly");
  reader.unknownKeys(readonly, "storage.maintenance.readonly", ["enabled"]);
  return {
    readOnly: reader.boolean(readonly.enabled, "storage.maintenance.readonly.enabled", false),
    uploadPurging,
  };
}

function readStorage(reader: ConfigReader, tree: Mapping): StorageConfig {
  const raw = typeof tree.storage === "string" ? { [tree.storage]: {} } : tree.storage;
  const storage = reader.mapping(raw, "storage");
  const drivers = Object.keys(storage).filter((key) => !storageOptions.has(key));
  const known = registeredDrivers();
  let driver = "";
  if (drivers.length === 0) {
    reader.fail("storage", `no storage driver configured; name one of: ${known.join(", ")}`);
  } else if (drivers.length > 1) {
    reader.fail("storage", `must name exactly one storage driver, found ${drivers.join(", ")}`);
  } else if (!known.includes(drivers[0]!)) {
    reader.fail(`storage.${drivers[0]}`, `unknown storage driver; registered: ${known.join(", ")}`);
  } else {
    driver = drivers[0]!;
  }
  const parameters = driver === "" ? {} : reader.mapping(storage[driver], `storage.${driver}`);

  const del = reader.mapping(storage.delete, "storage.delete");
  reader.unknownKeys(del, "storage.delete", ["enabled"]);
  const redirect = reader.mapping(storage.redirect, "storage.redirect");
  reader.unknownKeys(redirect, "storage.redirect", ["disable"]);
  if (storage.cache !== undefined) {
    reader.warn("storage.cache", "ignored: Berth caches immutable blob facts itself");
  }
  if (storage.tag !== undefined) reader.warn("storage.tag", "not supported, ignored");
  return {
    driver,
    parameters: { ...parameters },
    deleteEnabled: reader.boolean(del.enabled, "storage.delete.enabled", false),
    redirect: !reader.boolean(redirect.disable, "storage.redirect.disable", false),
    ...readMaintenance(reader, storage),
  };
}

/** Splits `host:port` (`[::1]:5000`, `:5000`); undefined when `addr` is not that. */
export function parseAddress(addr: string): { hostname: string; port: number } | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr.trim());
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const hostname = match[1] ?? match[2] ?? "";
  if (match[1] !== undefined && isIP(hostname) !== 6) return undefined;
  if (match[2] !== undefined && hostname !== "" && !/^[A-Za-z0-9.-]+$/.test(hostname))
    return undefined;
  return { hostname, port };
}

const tlsVersions: Record<string, TlsConfig["minVersion"]> = {
  "tls1.0": "TLSv1",
  "tls1.1": "TLSv1.1",
  "tls1.2": "TLSv1.2",
  "tls1.3": "TLSv1.3",
};

function stringList(reader: ConfigReader, value: unknown, key: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [value];
  if (
    Array.isArray(value) &&
    value.every((item) => typeof item === "string" || typeof item === "number")
  ) {
    return value.map(String);
  }
  reader.fail(key, `must be a list of strings, got ${JSON.stringify(value)}`);
  return [];
}

function readTls(reader: ConfigReader, http: Mapping): TlsConfig | undefined {
  const tls = reader.mapping(http.tls, "http.tls");
  reader.unknownKeys(tls, "http.tls", [
    "certificate",
    "key",
    "clientcas",
    "minimumtls",
    "ciphersuites",
    "letsencrypt",
  ]);
  const certificate = reader.string(tls.certificate, "http.tls.certificate", "");
  const key = reader.string(tls.key, "http.tls.key", "");
  if (tls.ciphersuites !== undefined) {
    reader.warn("http.tls.ciphersuites", "ignored: Node's default cipher suites are used");
  }
  if (certificate === "" && key === "") {
    if (tls.letsencrypt !== undefined) {
      reader.fail(
        "http.tls.letsencrypt",
        "not supported; give http.tls.certificate and http.tls.key",
      );
    }
    return undefined;
  }
  if (certificate === "") reader.fail("http.tls.certificate", "is required with http.tls.key");
  if (key === "") reader.fail("http.tls.key", "is required with http.tls.certificate");
  const minimum = reader.oneOf(
    tls.minimumtls,
    "http.tls.minimumtls",
    Object.keys(tlsVersions),
    "tls1.2",
  );
  return {
    certificate,
    key,
    clientCAs: stringList(reader, tls.clientcas, "http.tls.clientcas"),
    minVersion: tlsVersions[minimum]!,
  };
}

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function readHeaders(reader: ConfigReader, http: Mapping): Record<string, string[]> {
  const headers = reader.mapping(http.headers, "http.headers");
  const result: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const key = `http.headers.${name}`;
    if (!headerName.test(name)) {
      reader.fail(key, "is not a valid header name");
      continue;
    }
    const values = stringList(reader, parseFlowList(value), key);
    if (values.some((item) => /[\r\n\0]/.test(item))) {
      reader.fail(key, "a header value may not contain line breaks");
      continue;
    }
    result[name] = values;
  }
  return result;
}

/** An environment override of a list arrives as a string such as `[nosniff]`. */
function parseFlowList(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const trimmed = value.trim();
  if (!trimmed.startsWith("[") || !trimmed.endsWith("]")) return value;
  return trimmed
    .slice(1, -1)
    .split(",")
    .map((item) => item.trim().replace(/^(["'])(.*)\1$/, "$2"))
    .filter((item) => item !== "");
}

function readHttp(reader: ConfigReader, tree: Mapping): HttpConfig {
  const http = reader.mapping(tree.http, "http");
  reader.unknownKeys(http, "http", [
    "addr",
    "net",
    "host",
    "prefix",
    "secret",
    "relativeurls",
    "draintimeout",
    "tls",
    "headers",
    "debug",
    "http2",
  ]);
  const addr = reader.string(http.addr, "http.addr", "127.0.0.1:5000");
  const address = parseAddress(addr);
  if (address === undefined) reader.fail("http.addr", `${JSON.stringify(addr)} is not host:port`);
  reader.oneOf(http.net, "http.net", ["tcp"], "tcp");

  let host: string | undefined = reader.string(http.host, "http.host", "") || undefined;
  if (host !== undefined) {
    const url = URL.canParse(host) ? new URL(host) : undefined;
    if (
      url === undefined ||
      (url.protocol !== "http:" && url.protocol !== "https:") ||
      url.search !== ""
    ) {
      reader.fail(
        "http.host",
        `${JSON.stringify(host)} is not an http(s) URL such as https://registry.example.com`,
      );
      host = undefined;
    } else {
      // As in distribution, only the scheme and authority count: paths come from the routes
      // (and http.prefix).
      if (url.pathname !== "/")
        reader.warn("http.host", `the path ${url.pathname} is ignored; use http.prefix`);
      host = url.origin;
    }
  }

  let prefix = reader.string(http.prefix, "http.prefix", "");
  if (prefix !== "" && (!prefix.startsWith("/") || /[?#\s]/.test(prefix))) {
    reader.fail("http.prefix", `${JSON.stringify(prefix)} must be a path starting with "/"`);
  }
  prefix = prefix.replace(/\/+$/, "");

  if (http.secret !== undefined) reader.warn("http.secret", "not used by Berth, ignored");
  if (http.debug !== undefined)
    reader.warn("http.debug", "the debug server is not supported, ignored");
  if (http.http2 !== undefined) reader.warn("http.http2", "Berth serves HTTP/1.1 only, ignored");
  reader.boolean(http.relativeurls, "http.relativeurls", false);

  return {
    addr,
    hostname: address?.hostname ?? "127.0.0.1",
    port: address?.port ?? 5000,
    host,
    prefix,
    tls: readTls(reader, http),
    headers: readHeaders(reader, http),
    drainTimeoutMs: reader.duration(http.draintimeout, "http.draintimeout", 10_000),
  };
}

function readIgnored(reader: ConfigReader, tree: Mapping): void {
  for (const [key, reason] of Object.entries(ignoredTopLevel)) {
    if (tree[key] !== undefined) reader.warn(key, `${reason}; ignored`);
  }
  if (tree.auth !== undefined && tree.auth !== null) {
    reader.fail(
      "auth",
      "authentication is not supported by Berth; remove the section and put Berth behind an " +
        "authenticating proxy (refusing to serve unauthenticated what the config protects)",
    );
  }
  const health = reader.mapping(tree.health, "health");
  for (const checker of ["file", "http", "tcp"]) {
    if (health[checker] !== undefined) reader.warn(`health.${checker}`, "not supported, ignored");
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
    ...Object.keys(ignoredTopLevel),
  ];
  reader.unknownKeys(tree, "", known);
  const config: BerthConfig = {
    version: readVersion(reader, tree),
    log: readLog(reader, tree),
    storage: readStorage(reader, tree),
    http: readHttp(reader, tree),
    warnings: reader.warnings,
  };
  readIgnored(reader, tree);
  if (reader.problems.length > 0) throw new ConfigError(reader.problems, source);
  return config;
}
