// The health section of config.yml, distribution's keys: periodic checks of the storage driver,
// of files (a file that exists takes the registry out of rotation), of HTTP URIs and TCP
// addresses. A check that fails `threshold` times in a row (a single failure when 0) makes
// /debug/health answer 503.

import { parseAddress } from "./http.js";
import type { ConfigReader, Mapping } from "./reader.js";

const defaultIntervalMs = 10_000;

/** `health.storagedriver`. */
export interface StorageDriverCheckConfig {
  enabled: boolean;
  intervalMs: number;
  threshold: number;
}

/** One `health.file` entry: fails while `file` exists. */
export interface FileCheckConfig {
  file: string;
  intervalMs: number;
}

/** One `health.http` entry: a HEAD request to `uri` must answer `statusCode` within the timeout. */
export interface HttpCheckConfig {
  uri: string;
  headers: Record<string, string[]>;
  statusCode: number;
  timeoutMs: number;
  intervalMs: number;
  threshold: number;
}

/** One `health.tcp` entry: a connection to `addr` must open within the timeout. */
export interface TcpCheckConfig {
  addr: string;
  hostname: string;
  port: number;
  timeoutMs: number;
  intervalMs: number;
  threshold: number;
}

/** The health section. */
export interface HealthConfig {
  storageDriver: StorageDriverCheckConfig;
  file: FileCheckConfig[];
  http: HttpCheckConfig[];
  tcp: TcpCheckConfig[];
}

function entries(reader: ConfigReader, value: unknown, key: string): Mapping[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    reader.fail(key, "must be a list");
    return [];
  }
  return value.map((item, index) => reader.mapping(item, `${key}[${index}]`));
}

function threshold(reader: ConfigReader, value: unknown, key: string): number {
  if (value === undefined || value === null) return 0;
  const number = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== "number" || !Number.isInteger(number) || number < 0) {
    reader.fail(key, `must be a whole number of failures, got ${JSON.stringify(value)}`);
    return 0;
  }
  return number;
}

function interval(reader: ConfigReader, value: unknown, key: string): number {
  const ms = reader.duration(value, key, defaultIntervalMs);
  return ms === 0 ? defaultIntervalMs : ms;
}

export function readHealth(reader: ConfigReader, tree: Mapping): HealthConfig {
  const health = reader.mapping(tree.health, "health");
  reader.unknownKeys(health, "health", ["storagedriver", "file", "http", "tcp"]);
  const driver = reader.mapping(health.storagedriver, "health.storagedriver");
  reader.unknownKeys(driver, "health.storagedriver", ["enabled", "interval", "threshold"]);
  const storageDriver = {
    enabled: reader.boolean(driver.enabled, "health.storagedriver.enabled", false),
    intervalMs: interval(reader, driver.interval, "health.storagedriver.interval"),
    threshold: threshold(reader, driver.threshold, "health.storagedriver.threshold"),
  };
  const file = entries(reader, health.file, "health.file").flatMap((entry, index) => {
    const key = `health.file[${index}]`;
    reader.unknownKeys(entry, key, ["file", "interval"]);
    const path = reader.string(entry.file, `${key}.file`) ?? "";
    if (path === "") {
      reader.fail(`${key}.file`, "is required");
      return [];
    }
    return [{ file: path, intervalMs: interval(reader, entry.interval, `${key}.interval`) }];
  });
  const http = entries(reader, health.http, "health.http").flatMap((entry, index) => {
    const key = `health.http[${index}]`;
    reader.unknownKeys(entry, key, [
      "uri",
      "headers",
      "statuscode",
      "timeout",
      "interval",
      "threshold",
    ]);
    const uri = reader.string(entry.uri, `${key}.uri`) ?? "";
    if (!URL.canParse(uri) || !/^https?:$/.test(new URL(uri).protocol)) {
      reader.fail(`${key}.uri`, `${JSON.stringify(uri)} is not an http(s) URL`);
      return [];
    }
    const headers: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(reader.mapping(entry.headers, `${key}.headers`))) {
      headers[name] = reader.stringList(values, `${key}.headers.${name}`);
    }
    const status = entry.statuscode ?? 200;
    if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
      reader.fail(
        `${key}.statuscode`,
        `must be an HTTP status code, got ${JSON.stringify(status)}`,
      );
    }
    return [
      {
        uri,
        headers,
        statusCode: typeof status === "number" ? status : 200,
        timeoutMs: reader.duration(entry.timeout, `${key}.timeout`, 1_000) || 1_000,
        intervalMs: interval(reader, entry.interval, `${key}.interval`),
        threshold: threshold(reader, entry.threshold, `${key}.threshold`),
      },
    ];
  });
  const tcp = entries(reader, health.tcp, "health.tcp").flatMap((entry, index) => {
    const key = `health.tcp[${index}]`;
    reader.unknownKeys(entry, key, ["addr", "timeout", "interval", "threshold"]);
    const addr = reader.string(entry.addr, `${key}.addr`) ?? "";
    const address = parseAddress(addr);
    if (address === undefined || address.hostname === "") {
      reader.fail(`${key}.addr`, `${JSON.stringify(addr)} is not host:port`);
      return [];
    }
    return [
      {
        addr,
        ...address,
        timeoutMs: reader.duration(entry.timeout, `${key}.timeout`, 1_000) || 1_000,
        intervalMs: interval(reader, entry.interval, `${key}.interval`),
        threshold: threshold(reader, entry.threshold, `${key}.threshold`),
      },
    ];
  });
  return { storageDriver, file, http, tcp };
}
