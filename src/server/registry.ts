// Over 400 lines: one place wires a config to running parts (storage, API, metrics, health, jobs).
// startRegistry: a running registry in this process. It builds the storage driver, the registry
// storage layer and the API handler from a config, and serves them over HTTP(S) with what sits
// around the API: http.prefix, http.headers, the health endpoint and checks, request ids, access
// logs, metrics and the debug server (http.debug), the background jobs (upload purging, garbage
// collection) and a graceful stop. `berth serve` is a thin layer over it; so are Berth's own HTTP
// tests.

import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { pino, type Logger } from "pino";
import { ApiError, ApiResponse, createApiHandler, writeError } from "../api/index.js";
import { createAuth, KeyFileError, type Auth } from "../auth/index.js";
import { ConfigError, resolveConfig, type BerthConfig, type LogLevel } from "../config/index.js";
import {
  createDriver,
  DriverBase,
  dropSpareBuffers,
  InvalidParameterError,
  type DriverParameters,
  type StorageDriver,
} from "../driver/index.js";
import { HttpMetrics, MetricsRegistry, observeDriver, observeStorage } from "../metrics/index.js";
import type { ProxyRegistry } from "../proxy/index.js";
import type { Notifier } from "../notify/index.js";
import {
  createRegistryStorage,
  HealthProbe,
  PULL_FLUSH_MS,
  PullRecord,
  type Registry,
  type RegistryStorage,
} from "../storage/index.js";
import { startRetention, type RetentionJob } from "./retention.js";
import { startDebugServer, type DebugServer } from "./debug.js";
import type { UiHandler } from "../ui/index.js";
import { guardConnections, serverTimeoutOptions } from "./connections.js";
import { HealthCheck, healthPath } from "./health.js";
import { healthChecks, PeriodicChecks } from "./health-checks.js";
import { listen, localUrl } from "./listen.js";
import { trackRequest, type RequestTracking } from "./requests.js";
import { collectWhenIdle, v8HeapControl } from "./idle-gc.js";
import { lazyMallocTrim } from "./malloc-trim.js";
import { createLogger } from "./logger.js";
import { startGarbageCollector, type GarbageCollector } from "./garbage-collector.js";
import { startUploadPurger } from "./upload-purger.js";
import { startNotifier, type RegistryNotifier } from "./notifications.js";
import { startTracing, type Tracing } from "../tracing/index.js";

/** Options common to both ways of starting a registry. */
export interface RegistryOptionsBase {
  /**
   * A pino logger to log to (access lines at `info`). Default: a logger Berth creates, writing to
   * stderr at `logLevel`.
   */
  logger?: Logger;
  /** The level of the logger Berth creates: the config's `log.level`, else "warn". */
  logLevel?: LogLevel | "silent";
}

/** Starting a registry from a driver name and its parameters: the embedding way. */
export interface DriverRegistryOptions extends RegistryOptionsBase {
  /** The storage driver's name, such as "filesystem" or "inmemory". */
  driver: string;
  /** The driver's parameters, as its config.yml section would give them. */
  parameters?: DriverParameters;
  /** Allow deleting blobs and manifests. Default false. */
  deleteEnabled?: boolean;
  /** Refuse every write. Default false. */
  readOnly?: boolean;
  /** Redirect blob GETs to the backend when the driver can give a URL. Default true. */
  redirect?: boolean;
  /** The address to listen on. Default "127.0.0.1". */
  host?: string;
  /** Serve the web UI (config `ui`): `{ enabled: true, path: "/" }`. Default off. */
  ui?: { enabled?: boolean; path?: string };
  /** The port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Serve the registry below this path (config `http.prefix`). */
  prefix?: string;
  /** Headers added to every response (config `http.headers`). */
  headers?: Record<string, string | string[]>;
  /**
   * Authentication and access rules: config.yml's `auth` section as an object (`{ htpasswd: {
   * realm, path } }`, `{ token: { realm, service, issuer, rootcertbundle } }`, `accesscontrol`...).
   */
  auth?: Record<string, unknown>;
}

/** Starting a registry from a config: a BerthConfig, or an object in config.yml's shape. */
export interface ConfigRegistryOptions extends RegistryOptionsBase {
  /**
   * From parseConfig/loadConfig, or a plain object shaped like config.yml (`{ version: "0.1",
   * storage: { filesystem: { rootdirectory } }, http: { addr: "127.0.0.1:0" } }`), to which no
   * environment overrides are applied.
   */
  config: BerthConfig | Record<string, unknown>;
}

export type StartRegistryOptions = DriverRegistryOptions | ConfigRegistryOptions;

/** A running registry. */
export interface RunningRegistry {
  /** Where the registry answers, such as `http://127.0.0.1:41234` (with http.prefix, if any). */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The config it runs with. */
  readonly config: BerthConfig;
  readonly driver: StorageDriver;
  readonly storage: RegistryStorage;
  /** The storage layer itself, beneath a pull-through cache's wrapper if any (quotas, retention). */
  readonly registry: Registry;
  readonly logger: Logger;
  readonly server: Server;
  /** The background garbage collector, when `storage.maintenance.gc.enabled`. */
  readonly collector?: GarbageCollector;
  /**
   * The registry's metrics. Always there, for any part that counts something; served (and the
   * HTTP and driver metrics recorded) only with `http.debug.prometheus.enabled`.
   */
  readonly metrics: MetricsRegistry;
  /** The notifier, when `notifications` has an enabled endpoint. */
  readonly notifier?: Notifier;
  /** The pull times retention reads, when `storage.retention` has policies (flushed every minute). */
  readonly pulls?: PullRecord;
  /** The debug server's URL (`http.debug.addr`), such as `http://127.0.0.1:5001`; else undefined. */
  readonly debugUrl: string | undefined;
  /**
   * Stops the registry: stops accepting connections, closes idle keep-alive connections, lets
   * requests in flight finish (for at most `http.draintimeout`, then their connections are cut),
   * stops upload purging and flushes the log.
   */
  close(): Promise<void>;
}

/** A BerthConfig has `storage.driver` as a string; in config.yml's shape it is a section. */
function isBerthConfig(config: BerthConfig | Record<string, unknown>): config is BerthConfig {
  const storage = (config as { storage?: { driver?: unknown } }).storage;
  return typeof storage === "object" && storage !== null && typeof storage.driver === "string";
}

function configFromDriverOptions(options: DriverRegistryOptions): BerthConfig {
  const host = options.host ?? "127.0.0.1";
  return resolveConfig({
    version: "0.1",
    storage: {
      [options.driver]: options.parameters ?? {},
      delete: { enabled: options.deleteEnabled ?? false },
      redirect: { disable: options.redirect === false },
      maintenance: {
        readonly: { enabled: options.readOnly ?? false },
        uploadpurging: { enabled: false },
      },
    },
    http: {
      addr: `${host.includes(":") ? `[${host}]` : host}:${options.port ?? 0}`,
      prefix: options.prefix,
      headers: options.headers,
    },
    ...(options.auth === undefined ? {} : { auth: options.auth }),
    ...(options.ui === undefined ? {} : { ui: options.ui }),
  });
}

/** The config of `options`, checked. Throws a ConfigError naming each bad key. */
export function registryConfig(options: StartRegistryOptions): BerthConfig {
  if ("config" in options) {
    return isBerthConfig(options.config) ? options.config : resolveConfig(options.config);
  }
  return configFromDriverOptions(options);
}

/**
 * The storage driver and registry storage layer of `config`, for commands that work on storage
 * without serving it (garbage-collect). A driver parameter the driver rejects becomes a
 * ConfigError naming `storage.<driver>.<parameter>`. With `mustExist` (garbage-collect) storage
 * that is not there is an error naming it, and nothing is created.
 */
export async function openStorage(
  config: BerthConfig,
  use: { mustExist?: boolean; logger?: Logger } = {},
): Promise<{ driver: StorageDriver; storage: Registry; close: () => Promise<void> }> {
  const { driver: name, parameters } = config.storage;
  let driver: StorageDriver;
  try {
    driver = await createDriver(name, parameters, {
      mustExist: use.mustExist,
      readOnly: config.storage.readOnly,
    });
  } catch (error) {
    if (error instanceof InvalidParameterError) {
      const key = `storage.${name}.${error.parameter}`;
      throw new ConfigError([
        {
          key,
          message: `${key}: ${error.message.replace(`${name}: parameter ${error.parameter}: `, "")}`,
        },
      ]);
    }
    throw error;
  }
  const descriptorCache =
    config.storage.blobDescriptorCache === "redis" && config.redis !== undefined
      ? await (
          await import("./redis-cache.js")
        ).connectRedisCache(config.redis, use.logger ?? pino({ level: "silent" }))
      : undefined;
  const purging = config.storage.uploadPurging;
  const storage = createRegistryStorage(driver, {
    deleteEnabled: config.storage.deleteEnabled,
    readOnly: config.storage.readOnly,
    gcDelayMs: config.storage.gc.delayMs,
    descriptorCache,
    immutableTags: config.storage.immutableTags,
    quotas: config.storage.quotas,
    // An upload that stored nothing is abandoned at the purger's age, as one that stored some.
    ...(purging.enabled && !purging.dryRun ? { unstartedUploadMs: purging.ageMs } : {}),
  });
  return { driver, storage, close: async () => await descriptorCache?.close() };
}

/** The quotas' gauges (docs/metrics.md): bytes used and the limit, by the rule's patterns. */
function observeQuotas(metrics: MetricsRegistry, storage: Registry): void {
  const series = [
    ["used", "Bytes of the distinct blobs the manifests of a quota's repositories reference."],
    ["limit", "The limit of a quota (storage.quotas), by its repository patterns."],
  ] as const;
  for (const [which, help] of series) {
    metrics.gauge({
      name: `registry_storage_quota_${which}_bytes`,
      help,
      labelNames: ["repositories"],
      async collect() {
        for (const usage of await storage.currentQuotaUsage()) {
          const value = which === "used" ? usage.bytes : usage.limit;
          this.set({ repositories: usage.repositories.join(",") }, value);
        }
      },
    });
  }
}

/** A path outside http.prefix: 404 with the same error envelope the API uses for unknown paths. */
function outsidePrefix(req: IncomingMessage, res: ServerResponse, path: string): void {
  const error = new ApiError("UNSUPPORTED", `no such endpoint: ${path}`, { status: 404 });
  writeError(res, error, req.method === "HEAD", undefined);
}

async function createServer(config: BerthConfig): Promise<Server> {
  const options = {
    keepAlive: true,
    ServerResponse: ApiResponse,
    ...serverTimeoutOptions(config.http.timeouts),
  };
  const tls = config.http.tls;
  if (tls === undefined) return createHttpServer(options);
  const read = async (key: string, file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new ConfigError([
        { key, message: `${key}: cannot read ${file}: ${(error as Error).message}` },
      ]);
    }
  };
  const clientCAs = await Promise.all(
    tls.clientCAs.map((file) => read("http.tls.clientcas", file)),
  );
  return createHttpsServer({
    ...options,
    cert: await read("http.tls.certificate", tls.certificate),
    key: await read("http.tls.key", tls.key),
    minVersion: tls.minVersion,
    ...(clientCAs.length > 0 ? { ca: clientCAs, requestCert: true, rejectUnauthorized: true } : {}),
  });
}

/** What `serve` started, and how to tell its request handler that the registry is stopping. */
interface Serving {
  driver: StorageDriver;
  storage: RegistryStorage;
  /** The storage layer itself (under a pull-through cache's wrapper, if any). */
  registry: Registry;
  /** The pull-through cache, when `proxy` names upstreams (`storage` is then this). */
  proxy: ProxyRegistry | undefined;
  pulls: PullRecord | undefined;
  server: Server;
  metrics: MetricsRegistry;
  debug: DebugServer | undefined;
  notifications: RegistryNotifier | undefined;
  tracing: Tracing | undefined;
  /** Stops the periodic health checks and removes the storage probe. */
  stopHealth(): Promise<void>;
  /** From now on, responses close their connection instead of keeping it alive. */
  closing(): void;
  /** Resolves once no API handler is running (uploads have closed their writers). */
  drain(): Promise<void>;
  /** Releases what the storage holds open (the Redis connection). */
  closeStorage(): Promise<void>;
}

/** The auth of `config`, if any; a file it cannot use becomes a ConfigError naming its key. */
async function openAuth(config: BerthConfig, logger: Logger): Promise<Auth | undefined> {
  if (config.auth === undefined) return undefined;
  try {
    return await createAuth(config.auth, logger);
  } catch (error) {
    if (error instanceof KeyFileError) {
      throw new ConfigError([{ key: error.key, message: error.message }]);
    }
    throw error;
  }
}

/** The web UI of `config`, when enabled; a missing build becomes a ConfigError on ui.enabled. */
async function openUi(config: BerthConfig): Promise<UiHandler | undefined> {
  if (!config.ui.enabled) return undefined;
  const { createUiHandler, UiNotBuiltError } = await import("../ui/index.js");
  try {
    return await createUiHandler({ path: config.ui.path, prefix: config.http.prefix });
  } catch (error) {
    if (error instanceof UiNotBuiltError) {
      throw new ConfigError([{ key: "ui.enabled", message: error.message }]);
    }
    throw error;
  }
}

/** Auth over plain HTTP sends passwords and tokens in the clear: say so unless on loopback. */
function warnPlainAuth(config: BerthConfig, logger: Logger): void {
  if (config.auth === undefined || config.http.tls !== undefined) return;
  const host = config.http.hostname;
  const loopback = host === "localhost" || host === "::1" || host.startsWith("127.");
  if (!loopback) {
    logger.warn(
      { addr: config.http.addr },
      "auth is on over plain HTTP on a non-loopback address: credentials and tokens travel in " +
        "clear text; configure http.tls or a TLS-terminating proxy",
    );
  }
}

/** Builds the driver, storage, API and server of `config` and listens. */
async function serve(config: BerthConfig, logger: Logger): Promise<Serving> {
  const auth = await openAuth(config, logger);
  const ui = await openUi(config);
  const opened = await openStorage(config, { logger });
  const close = opened.close;
  const { driver } = opened;
  // The pull-through cache and the web UI load their modules only when configured (idle RSS,
  // docs/performance.md). Auth and notifications need none of this: the config reader and the API
  // import them anyway.
  const proxyModule =
    config.proxy.upstreams.length > 0 ? await import("../proxy/index.js") : undefined;
  const proxy =
    proxyModule === undefined
      ? undefined
      : new proxyModule.ProxyRegistry(
          opened.storage,
          driver,
          config.proxy,
          proxyModule.proxyLogging(logger),
        );
  const storage: RegistryStorage = proxy ?? opened.storage;
  const tracing = await startTracing(process.env);
  if (tracing !== undefined && driver instanceof DriverBase) tracing.traceDriver(driver);
  const metrics = new MetricsRegistry();
  const prometheus = config.http.debug?.prometheus.enabled === true;
  if (prometheus && config.storage.quotas.length > 0) observeQuotas(metrics, opened.storage);
  const pulls =
    config.storage.retention.policies.length > 0 && !config.storage.readOnly
      ? new PullRecord(driver)
      : undefined;
  const tracking: RequestTracking = {
    logger,
    accessLog: config.log.accessLog,
    http: undefined,
    uploads: undefined,
  };
  if (prometheus) {
    metrics.collectDefaultMetrics();
    if (driver instanceof DriverBase) observeDriver(metrics, driver);
    observeStorage(metrics, storage);
    tracking.http = new HttpMetrics(metrics);
    tracking.uploads = metrics.gauge({
      name: "registry_storage_uploads_in_progress",
      help: "Upload requests (POST, PATCH, PUT) whose bytes are being received now.",
    });
  }
  const { prefix, host } = config.http;
  // The API prepends this to the URLs of Location and Link headers: with http.host they are absolute.
  const urlBase = (host ?? "") + prefix;
  // This process's name in the storage health probe's path and in its events' source.
  const instance = randomUUID();
  const notifications = await startNotifier(
    config,
    driver,
    instance,
    logger,
    prometheus ? metrics : undefined,
  );
  const api = createApiHandler({
    storage,
    logger,
    redirect: config.storage.redirect,
    prefix: urlBase,
    authorize: auth?.authorize,
    notifier: notifications?.notifier,
    deleteEnabled: config.storage.deleteEnabled,
    recordPull: pulls === undefined ? undefined : (...pull) => pulls.record(...pull),
  });
  const tokenEndpoint = auth?.tokenEndpoint;
  const probe = new HealthProbe(driver, instance, config.storage.readOnly);
  const periodic = new PeriodicChecks(
    healthChecks(config.health, config.storage.driver, probe),
    logger,
  );
  const health = new HealthCheck(storage, config.storage.driver, logger, {
    checks: periodic,
    storageDriver: config.health.storageDriver.enabled,
  });
  const server = await createServer(config).catch(async (error: unknown) => {
    await close();
    throw error;
  });
  const admit = guardConnections(server, config.http.timeouts, config.http.limits);
  const trim = lazyMallocTrim((reason) =>
    logger.debug(`freed C heap pages are not given back when idle: ${reason}`),
  );
  const stopIdleCollection = collectWhenIdle(
    () => api.activity(),
    dropSpareBuffers,
    v8HeapControl(trim),
  );

  const headers = Object.entries(config.http.headers);
  let closing = false;

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const tracked = trackRequest(req, res, tracking);
    if (closing) res.shouldKeepAlive = false;
    if (headers.length > 0) for (const [name, values] of headers) res.setHeader(name, values);
    if (!admit(req, res)) return;
    const url = req.url ?? "/";
    if (url === healthPath) return void health.respond(req.method, res);
    if (tokenEndpoint !== undefined && url.split("?")[0] === tokenEndpoint.path) {
      return tokenEndpoint.handle(req, res);
    }
    if (prefix !== "") {
      if (!url.startsWith(`${prefix}/`)) return outsidePrefix(req, res, url.split("?")[0]!);
      req.url = url.slice(prefix.length);
      if (req.url === healthPath) return void health.respond(req.method, res);
    }
    if (ui !== undefined) {
      const path = (req.url ?? "/").split("?")[0]!;
      if (ui.handles(path)) return ui.handle(req, res, path);
    }
    if (proxy !== undefined) req.url = proxy.rewriteNamespace(req.url ?? "/");
    if (tracing === undefined) {
      api(req, res, tracked);
    } else {
      const info = tracked;
      const active = tracing.startRequest(req, res, () => ({
        handler: info.handler,
        repository: info.repository,
        requestId: info.id,
      }));
      tracing.within(active, () => api(req, res, info));
    }
    tracked.routed();
  });

  await listen(server, config.http, "http.addr").catch(async (error: unknown) => {
    await notifications?.notifier.close();
    await close();
    throw error;
  });
  let debug: DebugServer | undefined;
  if (config.http.debug !== undefined) {
    try {
      debug = await startDebugServer(config.http.debug, {
        health,
        metrics: prometheus ? metrics : undefined,
      });
    } catch (error) {
      server.close();
      await notifications?.notifier.close();
      await close();
      throw error;
    }
  }
  return {
    driver,
    storage,
    registry: opened.storage,
    proxy,
    pulls,
    server,
    metrics,
    debug,
    notifications,
    tracing,
    stopHealth: async () => {
      await periodic.stop();
      await probe.remove();
    },
    closing: () => {
      closing = true;
      stopIdleCollection();
    },
    drain: () => api.drain(),
    closeStorage: close,
  };
}

/**
 * Starts a registry in this process. With `{ driver, parameters }` it listens on 127.0.0.1 and a
 * free port unless told otherwise; with `{ config }` it does what the config says. Resolves once
 * it accepts connections. Rejects with a ConfigError naming the key for a bad config, a bad driver
 * parameter or an address it cannot listen on.
 */
export async function startRegistry(options: StartRegistryOptions): Promise<RunningRegistry> {
  const config = registryConfig(options);
  const owned =
    options.logger === undefined
      ? createLogger({
          level: options.logLevel ?? ("config" in options ? config.log.level : "warn"),
          formatter: config.log.formatter,
          fields: config.log.fields,
        })
      : undefined;
  const logger = options.logger ?? owned!.logger;
  for (const warning of config.warnings) logger.warn(warning);
  warnPlainAuth(config, logger);

  let running: Serving;
  try {
    running = await serve(config, logger);
  } catch (error) {
    await owned?.flush();
    throw error;
  }
  const { driver, storage, proxy, server, metrics, debug } = running;
  const { prefix } = config.http;

  const stopPurger =
    config.storage.uploadPurging.enabled && !config.storage.readOnly
      ? startUploadPurger(storage, config.storage.uploadPurging, logger, metrics)
      : async () => {};
  const collector =
    config.storage.gc.enabled && !config.storage.readOnly
      ? startGarbageCollector(storage, config.storage.gc, logger, metrics)
      : undefined;

  const { pulls } = running;
  const retention: RetentionJob | undefined =
    pulls !== undefined ? startRetention(running.registry, config, logger, pulls) : undefined;
  const flushPulls = async (): Promise<void> => {
    try {
      await pulls?.flush();
    } catch (error) {
      logger.warn({ err: error }, "could not write pull times (kept for the next flush)");
    }
  };
  const pullFlusher =
    pulls === undefined ? undefined : setInterval(() => void flushPulls(), PULL_FLUSH_MS);
  pullFlusher?.unref();

  const stopProxy =
    proxy !== undefined
      ? await (await import("../proxy/index.js")).startProxy(proxy, logger, metrics)
      : async () => {};

  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.http.port;
  running.notifications?.listening(port);
  const url = localUrl(server, config.http.hostname, config.http.tls ? "https" : "http") + prefix;
  const prometheus = config.http.debug?.prometheus;
  logger.info(
    {
      url,
      driver: config.storage.driver,
      readOnly: config.storage.readOnly,
      deleteEnabled: config.storage.deleteEnabled,
      metrics:
        debug !== undefined && prometheus?.enabled ? `${debug.url}${prometheus.path}` : "off",
      ...(debug === undefined ? {} : { debug: debug.url }),
      tracing: running.tracing === undefined ? "off" : "on",
      notifications: config.notifications.endpoints
        .filter((endpoint) => !endpoint.disabled)
        .map((endpoint) => endpoint.name),
    },
    "registry listening",
  );

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      running.closing();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const drain = setTimeout(() => server.closeAllConnections(), config.http.drainTimeoutMs);
      // A keep-alive connection whose last request finishes during the drain becomes idle: close it.
      const idle = setInterval(() => server.closeIdleConnections(), 100);
      await Promise.all([stopped, debug?.close()]);
      clearTimeout(drain);
      clearInterval(idle);
      // Connections are closed, handlers may still be closing writers: what they keep must be kept.
      await running.drain();
      // Handlers are done: their events are queued; what is not delivered stays in the spool.
      await running.notifications?.notifier.close();
      await running.tracing?.flush();
      await stopPurger();
      await collector?.stop();
      await retention?.stop();
      clearInterval(pullFlusher);
      await flushPulls();
      await running.stopHealth();
      await stopProxy();
      await running.closeStorage();
      // An out-of-process driver's process stops with the registry that started it.
      await driver.close?.();
      logger.info("registry stopped");
      await owned?.flush();
    })();
    return closed;
  };

  return {
    url,
    port,
    config,
    driver,
    storage,
    registry: running.registry,
    logger,
    server,
    metrics,
    debugUrl: debug?.url,
    collector,
    pulls,
    notifier: running.notifications?.notifier,
    close,
  };
}
