// Periodic removal of abandoned uploads (config `storage.maintenance.uploadpurging`), as
// distribution does: the first purge after a random delay of up to one interval (at most an hour),
// so that registries started together do not purge together, then one per interval. A purge
// starts only after the previous one finished. Timers do not keep the process alive.

import type { Logger } from "pino";
import type { StorageConfig } from "../config/index.js";
import { formatDuration } from "../config/index.js";
import type { MetricsRegistry } from "../metrics/index.js";
import type { RegistryStorage } from "../storage/index.js";

const maxFirstDelayMs = 3_600_000;

/** Starts purging; returns what stops it (and waits for a purge in progress). */
export function startUploadPurger(
  storage: RegistryStorage,
  options: StorageConfig["uploadPurging"],
  logger: Logger,
  metrics: MetricsRegistry,
): () => Promise<void> {
  const runs = metrics.counter({
    name: "registry_storage_purge_runs_total",
    help: "Upload purges run, by outcome (ok, error).",
    labelNames: ["outcome"],
  });
  const removedTotal = metrics.counter({
    name: "registry_storage_purge_uploads_removed_total",
    help: "Abandoned uploads the upload purger removed (none in a dry run).",
  });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const purge = async (): Promise<void> => {
    try {
      const removed = await storage.purgeUploads(options.ageMs, options.dryRun);
      runs.inc({ outcome: "ok" });
      if (!options.dryRun) removedTotal.inc(removed.length);
      logger.info(
        { uploads: removed, dryRun: options.dryRun },
        `upload purge: ${options.dryRun ? "would remove" : "removed"} ${removed.length} upload(s) older than ${formatDuration(options.ageMs)}`,
      );
    } catch (error) {
      runs.inc({ outcome: "error" });
      logger.error({ err: error }, "upload purge failed");
    }
  };

  const schedule = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = purge().finally(() => {
        running = undefined;
        schedule(options.intervalMs);
      });
    }, delayMs);
    timer.unref();
  };

  schedule(Math.floor(Math.random() * Math.min(options.intervalMs, maxFirstDelayMs)));
  logger.debug(
    { age: formatDuration(options.ageMs), interval: formatDuration(options.intervalMs) },
    "upload purging scheduled",
  );
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
