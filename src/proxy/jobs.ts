// The pull-through cache's background work in a running registry: expiry of the repositories
// nobody pulled for their ttl, its metrics (registry_proxy_*), and its counters per upstream in the
// log every minute when they changed and once more when stopped.

import type { Logger } from "pino";
import type { MetricsRegistry } from "../metrics/index.js";
import { observeProxy } from "./metrics.js";
import type { ProxyOptions, ProxyRegistry } from "./registry.js";

/** The cache's reports (stale tags, expired repositories) as log lines. */
export function proxyLogging(logger: Logger): ProxyOptions {
  return {
    onStale: (repository, error) =>
      logger.warn({ repository, err: error }, "upstream failed: serving the cached tag"),
    expiryLog: {
      expired: (repository) =>
        logger.info(
          { repository },
          "pull-through cache: repository expired (not pulled for its ttl)",
        ),
      failed: (what, error) => logger.warn({ err: error }, `pull-through cache: ${what} failed`),
    },
  };
}

/** How often the pull-through cache's counters are logged (when they changed). */
const PROXY_LOG_INTERVAL_MS = 60_000;

/** Starts the cache's background work; resolves to what stops it. */
export async function startProxy(
  proxy: ProxyRegistry,
  logger: Logger,
  metrics: MetricsRegistry,
): Promise<() => Promise<void>> {
  observeProxy(metrics, proxy);
  await proxy.start().catch((error: unknown) => {
    logger.error({ err: error }, "pull-through cache: expiry of cached repositories not started");
  });
  let last = "";
  const log = (): void => {
    const upstreams = proxy.stats();
    const text = JSON.stringify(upstreams);
    if (text === last) return;
    last = text;
    logger.info({ upstreams }, "pull-through cache");
  };
  const timer = setInterval(log, PROXY_LOG_INTERVAL_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await proxy.stop();
    log();
  };
}
