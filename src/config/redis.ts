// config.yml's `redis` section, as distribution 2.8 writes it (addr, password, db, the three
// timeouts, pool), plus what distribution 3 added that a single connection can use (`addrs` with
// one address, `username`, `tls`). Berth uses Redis for `storage.cache.blobdescriptor: redis`
// only; the section is read whenever it is there, and required by that setting.

import type { ConfigReader, Mapping } from "./reader.js";

/** The `redis` section, checked. */
export interface RedisConfig {
  /** `host:port` of the Redis server. */
  addr: string;
  username?: string;
  password?: string;
  /** The database number. Default 0. */
  db: number;
  /** Connecting gives up after this long; 0: ioredis's default (10 s). */
  dialTimeoutMs: number;
  /** A command without an answer after this long fails (the larger of read and write); 0: never. */
  commandTimeoutMs: number;
  /** TLS to the server when present: CA files to trust, and a client certificate for mTLS. */
  tls?: { certificate?: string; key?: string; rootCas: string[] };
}

const KEYS = [
  "addr",
  "addrs",
  "username",
  "password",
  "db",
  "dialtimeout",
  "readtimeout",
  "writetimeout",
  "pool",
  "tls",
];

/** `host:port` with a port from 1 to 65535, or undefined. */
function hostPort(value: string): string | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(value.trim());
  if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65535) return undefined;
  return value.trim();
}

function readAddr(reader: ConfigReader, redis: Mapping): string | undefined {
  const addrs =
    redis.addrs === undefined ? undefined : reader.stringList(redis.addrs, "redis.addrs");
  if (addrs !== undefined && addrs.length > 1) {
    reader.fail("redis.addrs", "Berth connects to one Redis server: give one address");
  }
  const key = redis.addr !== undefined || addrs === undefined ? "redis.addr" : "redis.addrs";
  const value = redis.addr !== undefined ? reader.string(redis.addr, key) : addrs?.[0];
  if (value === undefined || value === "") {
    reader.fail("redis.addr", "is required: host:port of the Redis server");
    return undefined;
  }
  const addr = hostPort(value);
  if (addr === undefined) reader.fail(key, `${JSON.stringify(value)} is not host:port`);
  return addr;
}

function readTls(reader: ConfigReader, redis: Mapping): RedisConfig["tls"] {
  if (redis.tls === undefined || redis.tls === null) return undefined;
  const tls = reader.mapping(redis.tls, "redis.tls");
  reader.unknownKeys(tls, "redis.tls", ["certificate", "key", "rootcas", "clientcas"]);
  const certificate = reader.string(tls.certificate, "redis.tls.certificate");
  const key = reader.string(tls.key, "redis.tls.key");
  if ((certificate === undefined) !== (key === undefined)) {
    reader.fail("redis.tls", "certificate and key go together (a client certificate for mTLS)");
  }
  // distribution 3.0 named the CA list clientcas, 3.1 rootcas: both are the CAs to trust.
  const rootCas = [
    ...reader.stringList(tls.rootcas, "redis.tls.rootcas"),
    ...reader.stringList(tls.clientcas, "redis.tls.clientcas"),
  ];
  return { ...(certificate !== undefined ? { certificate, key } : {}), rootCas };
}

/** The `redis` section, or undefined when there is none. */
export function readRedis(reader: ConfigReader, tree: Mapping): RedisConfig | undefined {
  if (tree.redis === undefined || tree.redis === null) return undefined;
  const redis = reader.mapping(tree.redis, "redis");
  reader.unknownKeys(redis, "redis", KEYS, ["tls", "password"]);
  const addr = readAddr(reader, redis);
  const pool = reader.mapping(redis.pool, "redis.pool");
  reader.unknownKeys(pool, "redis.pool", ["maxidle", "maxactive", "idletimeout"]);
  reader.integer(pool.maxidle, "redis.pool.maxidle", 0);
  reader.integer(pool.maxactive, "redis.pool.maxactive", 0);
  reader.duration(pool.idletimeout, "redis.pool.idletimeout", 0);
  if (Object.keys(pool).length > 0) {
    reader.warn("redis.pool", "ignored: Berth sends every command over one pipelined connection");
  }
  const username = reader.string(redis.username, "redis.username");
  const password = reader.string(redis.password, "redis.password");
  const tls = readTls(reader, redis);
  const config: RedisConfig = {
    addr: addr ?? "",
    db: reader.integer(redis.db, "redis.db", 0, 0, 65535),
    dialTimeoutMs: reader.duration(redis.dialtimeout, "redis.dialtimeout", 0),
    commandTimeoutMs: Math.max(
      reader.duration(redis.readtimeout, "redis.readtimeout", 0),
      reader.duration(redis.writetimeout, "redis.writetimeout", 0),
    ),
    ...(username !== undefined && username !== "" ? { username } : {}),
    ...(password !== undefined && password !== "" ? { password } : {}),
    ...(tls !== undefined ? { tls } : {}),
  };
  return config;
}
