// `storage.cache.blobdescriptor: redis`: the blob descriptor cache (storage/descriptor-cache.ts)
// in Redis, through ioredis, so that the replicas of one registry share it: a link or blob deleted
// through one replica (a DELETE, a garbage collection) is forgotten for all of them at once.
//
// Keys are Berth's own, so a Redis shared with distribution registries never mixes their entries:
//   berth:link:<storage path of a layer or revision link>  -> the digest it holds
//   berth:size:<digest>                                     -> the blob's size in bytes
// Each expires REDIS_ENTRY_TTL_MS after it was written. That bounds the one staleness Redis
// leaves: a replica that read a link just before another deleted it, and wrote it to Redis just
// after the delete cleared it.
//
// Redis is a cache, not a dependency: when it does not answer (down, timeout), a lookup misses
// and goes to storage, a write is dropped, and the failure is logged at most every 10 s. Commands
// are not queued while disconnected, so a pull never waits for Redis to come back.

import { readFile } from "node:fs/promises";
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import type { RedisConfig } from "../config/index.js";
import type { BlobDescriptorCache, Digest } from "../storage/index.js";

/** How long a Redis entry lives: ten minutes. */
export const REDIS_ENTRY_TTL_MS = 600_000;

/** A command's timeout when the config gives no read or write timeout. */
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;

/** Failures are logged at most this often. */
const LOG_EVERY_MS = 10_000;

/** The ioredis options of a `redis` section (TLS files read here). */
async function clientOptions(config: RedisConfig): Promise<RedisOptions> {
  const colon = config.addr.lastIndexOf(":");
  const host = config.addr.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const tls = config.tls;
  return {
    host,
    port: Number(config.addr.slice(colon + 1)),
    db: config.db,
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(config.password !== undefined ? { password: config.password } : {}),
    ...(config.dialTimeoutMs > 0 ? { connectTimeout: config.dialTimeoutMs } : {}),
    commandTimeout:
      config.commandTimeoutMs > 0 ? config.commandTimeoutMs : DEFAULT_COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    ...(tls !== undefined
      ? {
          tls: {
            ...(tls.rootCas.length > 0
              ? { ca: await Promise.all(tls.rootCas.map((file) => readFile(file))) }
              : {}),
            ...(tls.certificate !== undefined
              ? { cert: await readFile(tls.certificate), key: await readFile(tls.key!) }
              : {}),
          },
        }
      : {}),
  };
}

export class RedisDescriptorCache implements BlobDescriptorCache {
  private lastLogged = 0;

  constructor(
    private readonly client: Redis,
    private readonly logger: Logger,
    private readonly ttlMs = REDIS_ENTRY_TTL_MS,
  ) {
    // ioredis reports connection errors as events; a command's own failure is caught below.
    client.on("error", (error: Error) => this.failed(error, "connection"));
  }

  private failed(error: unknown, what: string): void {
    const now = performance.now();
    if (now - this.lastLogged < LOG_EVERY_MS && this.lastLogged !== 0) return;
    this.lastLogged = now;
    this.logger.warn(
      { err: error instanceof Error ? error.message : String(error) },
      `redis blob descriptor cache: ${what} failed; reading storage instead`,
    );
  }

  private async get(key: string): Promise<string | undefined> {
    try {
      return (await this.client.get(key)) ?? undefined;
    } catch (error) {
      this.failed(error, "lookup");
      return undefined;
    }
  }

  private async set(key: string, value: string): Promise<void> {
    try {
      await this.client.set(key, value, "PX", this.ttlMs);
    } catch (error) {
      this.failed(error, "write");
    }
  }

  private async forget(key: string): Promise<void> {
    try {
      await this.client.del(key);
    } catch (error) {
      // Other replicas may believe the entry until it expires.
      this.failed(error, "delete");
    }
  }

  link(path: string): Promise<Digest | undefined> {
    return this.get(`berth:link:${path}`);
  }

  setLink(path: string, digest: Digest): Promise<void> {
    return this.set(`berth:link:${path}`, digest);
  }

  forgetLink(path: string): Promise<void> {
    return this.forget(`berth:link:${path}`);
  }

  async size(digest: Digest): Promise<number | undefined> {
    const value = await this.get(`berth:size:${digest}`);
    const size = value === undefined ? NaN : Number(value);
    return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
  }

  setSize(digest: Digest, size: number): Promise<void> {
    return this.set(`berth:size:${digest}`, String(size));
  }

  forgetSize(digest: Digest): Promise<void> {
    return this.forget(`berth:size:${digest}`);
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

/**
 * Connects to the Redis of `config`. A Redis that does not answer at start is logged and the
 * registry starts anyway (its cache misses until Redis answers; ioredis keeps reconnecting).
 */
export async function connectRedisCache(
  config: RedisConfig,
  logger: Logger,
  ttlMs?: number,
): Promise<RedisDescriptorCache> {
  const client = new Redis(await clientOptions(config));
  const cache = new RedisDescriptorCache(client, logger, ttlMs);
  try {
    await client.connect();
  } catch (error) {
    logger.warn(
      { addr: config.addr, err: error instanceof Error ? error.message : String(error) },
      "redis blob descriptor cache: cannot connect yet; reading storage until it answers",
    );
  }
  return cache;
}
