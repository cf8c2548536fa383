// The notifier of a running registry (config `notifications`): its spool is `notifications.spooldir`
// when set (a local directory, through a filesystem driver), else the registry's own storage under
// /berth/notifications, and none on read-only storage without a spooldir (events then wait in
// memory only).

import { hostname } from "node:os";
import type { Logger } from "pino";
import type { BerthConfig } from "../config/index.js";
import { createDriver, type StorageDriver } from "../driver/index.js";
import type { MetricsRegistry } from "../metrics/index.js";
import { Notifier, type SpoolLocation } from "../notify/index.js";
import { notificationSpoolPath } from "../storage/index.js";

/** A started notifier and the `source` record its events carry (addr set once listening). */
export interface RegistryNotifier {
  notifier: Notifier;
  /** Sets `source.addr` to this host and the port the registry listens on. */
  listening(port: number): void;
}

async function spoolLocation(
  config: BerthConfig,
  driver: StorageDriver,
  logger: Logger,
): Promise<SpoolLocation | undefined> {
  const directory = config.notifications.spoolDirectory;
  if (directory !== undefined) {
    const local = await createDriver("filesystem", { rootdirectory: directory });
    return { driver: local, directory: (endpoint) => `/${endpoint}` };
  }
  if (config.storage.readOnly) {
    logger.warn(
      "notifications: read-only storage and no notifications.spooldir: events not delivered yet " +
        "are kept in memory only and lost if the registry stops",
    );
    return undefined;
  }
  return { driver, directory: notificationSpoolPath };
}

/** The notifier of `config`, its spool recovered; undefined when no endpoint is enabled. */
export async function startNotifier(
  config: BerthConfig,
  driver: StorageDriver,
  instanceID: string,
  logger: Logger,
  metrics: MetricsRegistry | undefined,
): Promise<RegistryNotifier | undefined> {
  if (!config.notifications.endpoints.some((endpoint) => !endpoint.disabled)) return undefined;
  const source: { addr?: string; instanceID: string } = { instanceID };
  const notifier = new Notifier({
    config: config.notifications,
    source,
    spool: await spoolLocation(config, driver, logger),
    metrics,
    logger,
  });
  await notifier.start();
  return {
    notifier,
    listening: (port) => {
      source.addr = `${hostname()}:${port}`;
    },
  };
}
