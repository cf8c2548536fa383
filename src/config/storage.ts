// The storage section of config.yml: which driver (its section is handed to the driver as its
// parameters, unread here), deletes, redirects and maintenance (upload purging, read-only mode,
// garbage collection).

import {
  driverExecutableName,
  driverParameterNames,
  findDriverExecutableAtStart,
  registeredDrivers,
  type DriverParameters,
} from "../driver/index.js";
import { formatDuration } from "./duration.js";
import type { QuotaRule } from "../storage/index.js";
import { readImmutableTags, readQuotas, readRetention, type RetentionConfig } from "./retention.js";
import { closeName, type ConfigReader, type Mapping } from "./reader.js";

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
  /** `storage.maintenance.gc`: garbage collection as a background job of `berth serve`. */
  gc: GcConfig;
  /**
   * `storage.cache.blobdescriptor`: where known links and blob sizes are remembered, in process
   * (`inmemory`, the default) or in Redis, shared by the replicas (`redis`, needs `redis`).
   */
  blobDescriptorCache: "inmemory" | "redis";
  /** `storage.retention`: which tags stay (docs/retention.md). */
  retention: RetentionConfig;
  /** `storage.tags.immutable`: regular expressions of tags that never move once they exist. */
  immutableTags: string[];
  /** `storage.quotas`: bytes per repository pattern. */
  quotas: QuotaRule[];
}

/** `storage.maintenance.gc` (Berth's, beside distribution's uploadpurging; docs/gc.md). */
export interface GcConfig {
  /** Run the collector in `berth serve`. Default false. */
  enabled: boolean;
  /** Time between collections. Default 24h. */
  intervalMs: number;
  /**
   * Nothing younger than this is collected, and pushes refresh their protection every half of
   * it: the same value on every replica. Default 1h; 0 only for a registry nothing pushes to.
   */
  delayMs: number;
  /** Also collect manifests no tag reaches (and what only they use). Default false. */
  untagged: boolean;
  /** Log what would be collected, collect nothing. Default false. */
  dryRun: boolean;
}

/** The keys of the storage section that are options, not a driver. */
export const storageOptions: ReadonlySet<string> = new Set([
  "maintenance",
  "cache",
  "delete",
  "redirect",
  "tag",
  "tags",
  "retention",
  "quotas",
]);

const defaultPurging: StorageConfig["uploadPurging"] = {
  enabled: true,
  ageMs: 168 * 3_600_000,
  intervalMs: 24 * 3_600_000,
  dryRun: false,
};

function readMaintenance(
  reader: ConfigReader,
  storage: Mapping,
): Pick<StorageConfig, "readOnly" | "uploadPurging" | "gc"> {
  const maintenance = reader.mapping(storage.maintenance, "storage.maintenance");
  reader.unknownKeys(maintenance, "storage.maintenance", ["uploadpurging", "readonly", "gc"]);
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
    gc: readGc(reader, maintenance),
  };
}

/**
 * Warns about the parameters the driver does not read, when it declared the ones it does: a
 * misspelt one (`rootdir`) with the name it is close to, one distribution's driver reads as not
 * supported. The driver itself checks the values of the ones it reads.
 */
function readParameterNames(reader: ConfigReader, driver: string, parameters: Mapping): void {
  const names = driverParameterNames(driver);
  if (names === undefined) return;
  for (const name of Object.keys(parameters)) {
    if (names.known.includes(name)) continue;
    const key = `storage.${driver}.${name}`;
    if (names.unsupported?.includes(name)) {
      reader.warn(key, `not supported by Berth's ${driver} driver, ignored`);
      continue;
    }
    const close = closeName(name, names.known);
    const hint = close === undefined ? "" : `; did you mean ${close}?`;
    reader.warn(key, `unknown parameter of the ${driver} driver, ignored${hint}`);
  }
}

function readGc(reader: ConfigReader, maintenance: Mapping): GcConfig {
  const key = "storage.maintenance.gc";
  const gc = reader.mapping(maintenance.gc, key);
  reader.unknownKeys(gc, key, ["enabled", "interval", "delay", "untagged", "dryrun"]);
  const config: GcConfig = {
    enabled: reader.boolean(gc.enabled, `${key}.enabled`, false),
    intervalMs: reader.duration(gc.interval, `${key}.interval`, 24 * 3_600_000),
    delayMs: reader.duration(gc.delay, `${key}.delay`, 3_600_000),
    untagged: reader.boolean(gc.untagged, `${key}.untagged`, false),
    dryRun: reader.boolean(gc.dryrun, `${key}.dryrun`, false),
  };
  if (config.intervalMs <= 0) {
    reader.fail(`${key}.interval`, `must be more than 0, got ${formatDuration(config.intervalMs)}`);
  }
  if (config.delayMs < 0) {
    reader.fail(`${key}.delay`, `must not be negative, got ${formatDuration(config.delayMs)}`);
  } else if (config.enabled && config.delayMs === 0) {
    reader.fail(`${key}.delay`, "must be more than 0 while the registry serves (enabled: true)");
  }
  return config;
}

export function readStorage(reader: ConfigReader, tree: Mapping): StorageConfig {
  const raw = typeof tree.storage === "string" ? { [tree.storage]: {} } : tree.storage;
  const storage = reader.mapping(raw, "storage");
  const drivers = Object.keys(storage).filter((key) => !storageOptions.has(key));
  const known = registeredDrivers();
  let driver = "";
  if (drivers.length === 0) {
    reader.fail("storage", `no storage driver configured; name one of: ${known.join(", ")}`);
  } else if (drivers.length > 1) {
    reader.fail("storage", `must name exactly one storage driver, found ${drivers.join(", ")}`);
  } else if (
    !known.includes(drivers[0]!) &&
    findDriverExecutableAtStart(drivers[0]!) === undefined
  ) {
    // Any other name is an out-of-process driver, found on PATH as the factory finds it.
    reader.fail(
      `storage.${drivers[0]}`,
      `unknown storage driver; registered: ${known.join(", ")}; no executable ${driverExecutableName(drivers[0]!)} on PATH`,
    );
  } else {
    driver = drivers[0]!;
  }
  const parameters = driver === "" ? {} : reader.mapping(storage[driver], `storage.${driver}`);
  if (driver !== "") readParameterNames(reader, driver, parameters);

  const del = reader.mapping(storage.delete, "storage.delete");
  reader.unknownKeys(del, "storage.delete", ["enabled"]);
  const redirect = reader.mapping(storage.redirect, "storage.redirect");
  reader.unknownKeys(redirect, "storage.redirect", ["disable"]);
  const cache = reader.mapping(storage.cache, "storage.cache");
  reader.unknownKeys(cache, "storage.cache", ["blobdescriptor", "layerinfo"]);
  // layerinfo is blobdescriptor's former name, still read by distribution.
  const descriptorKey =
    cache.blobdescriptor === undefined && cache.layerinfo !== undefined
      ? "storage.cache.layerinfo"
      : "storage.cache.blobdescriptor";
  const blobDescriptorCache = reader.oneOf(
    cache.blobdescriptor ?? cache.layerinfo,
    descriptorKey,
    ["inmemory", "redis"] as const,
    "inmemory",
  );
  if (storage.tag !== undefined) reader.warn("storage.tag", "not supported, ignored");
  const maintenance = readMaintenance(reader, storage);
  const retention = readRetention(reader, storage);
  if (maintenance.gc.delayMs === 0 && retention.policies.some((policy) => policy.deleteUntagged)) {
    reader.warn(
      "storage.maintenance.gc.delay",
      "0s while a storage.retention policy deletes untagged manifests: in berth serve, a push " +
        "racing with retention's collection can lose what it uploaded; 0s is for offline runs",
    );
  }
  return {
    driver,
    parameters: { ...parameters },
    deleteEnabled: reader.boolean(del.enabled, "storage.delete.enabled", false),
    redirect: !reader.boolean(redirect.disable, "storage.redirect.disable", false),
    ...maintenance,
    blobDescriptorCache,
    retention,
    immutableTags: readImmutableTags(reader, storage),
    quotas: readQuotas(reader, storage),
  };
}
