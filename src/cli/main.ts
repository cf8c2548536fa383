#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=262144 MALLOC_TRIM_THRESHOLD_=134217728 node --initial-old-space-size=64 --max-semi-space-size=4 --expose-gc
// The `berth` command: `serve` runs a registry, `garbage-collect` removes blobs nothing references,
// `retention` applies storage.retention once, `usage` prints what each storage quota holds,
// `driver-server` serves a built-in storage driver to another Berth as an out-of-process driver;
// `agent`, `tracker` and `origin` distribute blobs between hosts peer to peer (./p2p.ts).
// Both read a config.yml in distribution's shape (with REGISTRY_* environment overrides); `serve`
// without one stores in ./data and listens on 127.0.0.1:5000. A bad config exits non-zero with the
// offending key named on stderr.
//
// The first line gives node its flags and glibc's allocator two settings (npm start passes the
// same; a test checks they agree):
// MALLOC_MMAP_THRESHOLD_=262144: buffers of 256 KiB and more (the 1-2 MiB copy and write buffers)
// get pages of their own, returned to the system when freed. By default glibc raises this
// threshold to the size of the first such buffer freed, and from then on serves them from its heap,
// where freed ones between live chunks stay resident: 39 MB of free chunks in the heap after three
// skopeo push/pull rounds, RSS 103-118 MiB after them against 85 with the setting.
// MALLOC_TRIM_THRESHOLD_=134217728: glibc gives its heap's top back on its own only beyond 128 MiB
// free (the first setting disables glibc's own adjustment of it); the idle collector gives the
// heap's free pages back once a burst is over, and every 30 s to a server never idle
// (server/idle-gc.ts). At 8 MiB, the body chunks a large push frees in bulk at each collection were
// given back and the next ones faulted their pages in again: 3-10 thousand page faults more per
// 256 MiB push, and up to 100 thousand in a first 1 GiB push, at 15-18 µs each on the bench's
// machine (docs/performance.md, "What a page fault costs here"); a 1 MiB threshold doubled a 1 GiB
// push's system time.
// --initial-old-space-size=64: with the default, V8 starts a full collection about every 100 ms of
// a large push once the heap passes 8 MB, each freeing the request's buffers in bulk, and a 1 GiB
// push took 4-6 CPU s instead of 2.2-2.7 (docs/performance.md, "The wave's regression").
// --max-semi-space-size=4: request floods grew the young generation to 32 MB, kept for good (RSS
// 140-160 MiB after a bench run); 8 MB serves them at the same CPU per request.
// --expose-gc: the server collects once when a burst of requests is over (server/idle-gc.ts).

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { ConfigError, loadConfig, parseDuration } from "../config/index.js";
import {
  collectOnce,
  openStorage,
  retainOnce,
  startRegistry,
  type RunningRegistry,
} from "../server/index.js";
import { formatBytes, PullRecord } from "../storage/index.js";
import { ProgressLine } from "./progress.js";
import { createBuiltinDriver } from "../driver/index.js";
import { addP2PCommands } from "./p2p.js";

/** The version in package.json, found by walking up from this file (src/ or dist/src/). */
function packageVersion(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(join(directory, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === "berth" && manifest.version) return manifest.version;
    } catch {
      // No package.json here: look further up.
    }
    const parent = dirname(directory);
    if (parent === directory) return "unknown";
    directory = parent;
  }
}

/** Prints a failure the way a user can act on it and sets a failing exit code. */
function reportFailure(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`berth: ${message}\n`);
  process.exitCode = error instanceof ConfigError ? 2 : 1;
}

/** Closes `registry` on the first SIGINT or SIGTERM, then exits 0; a second signal exits at once. */
function closeOnSignals(registry: RunningRegistry): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`berth: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`berth: ${signal}: stopping (in-flight requests may finish)\n`);
    registry.close().then(
      () => process.exit(0),
      (error: unknown) => {
        reportFailure(error);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

/**
 * The last resort: a rejection or exception no request handler caught is a bug, logged, and the
 * registry keeps serving. Requests share no state a thrown handler could leave half-changed
 * (storage writes are atomic or resumable), so ending every client's requests for one would cost
 * more than it protects: as distribution recovers a panicking handler, Berth goes on.
 */
function surviveUncaught(registry: RunningRegistry): void {
  process.on("unhandledRejection", (reason) => {
    registry.logger.error({ err: reason }, "unhandled rejection (a bug): still serving");
  });
  process.on("uncaughtException", (error) => {
    registry.logger.error({ err: error }, "uncaught exception (a bug): still serving");
  });
}

async function serve(file: string | undefined): Promise<void> {
  const config = await loadConfig(file);
  const registry = await startRegistry({ config });
  closeOnSignals(registry);
  surviveUncaught(registry);
  const root = config.storage.parameters.rootdirectory;
  const storage =
    typeof root === "string" || typeof root === "number"
      ? `${config.storage.driver} (${root})`
      : config.storage.driver;
  process.stdout.write(
    `Berth ${packageVersion()} serving ${registry.url} with ${storage} storage\n`,
  );
}

async function garbageCollect(
  file: string,
  options: { dryRun?: boolean; deleteUntagged?: boolean; delay?: string },
): Promise<void> {
  const config = await loadConfig(file);
  const delayMs =
    options.delay === undefined ? config.storage.gc.delayMs : parseDuration(options.delay);
  if (delayMs === undefined || delayMs < 0) {
    throw new ConfigError([
      { key: "--delay", message: `--delay: not a duration: ${JSON.stringify(options.delay)}` },
    ]);
  }
  // As distribution's, a collection of storage that is not there fails naming it (a misspelt root
  // is not an empty registry) and creates nothing.
  const { storage, close } = await openStorage(config, { mustExist: true });
  const progress = new ProgressLine(process.stderr);
  try {
    // Under the lease, so it can run against live registries (and never beside their collector).
    // The collection logs its summary line last, as distribution's does.
    await collectOnce(storage, {
      dryRun: options.dryRun ?? false,
      deleteUntagged: options.deleteUntagged ?? config.storage.gc.untagged,
      delayMs,
      log: (line) => progress.above(line, process.stdout),
      progress: (state) => progress.update(state),
    });
  } finally {
    progress.end();
    await close();
  }
}

async function retention(file: string, options: { dryRun?: boolean }): Promise<void> {
  const config = await loadConfig(file);
  if (config.storage.retention.policies.length === 0) {
    throw new ConfigError([
      { key: "storage.retention.policies", message: "storage.retention.policies: none configured" },
    ]);
  }
  const { driver, storage, close } = await openStorage(config, { mustExist: true });
  const progress = new ProgressLine(process.stderr);
  try {
    const run = await retainOnce(storage, config, {
      dryRun: options.dryRun === true || config.storage.retention.dryRun,
      pulls: new PullRecord(driver),
      log: (line) => progress.above(line, process.stdout),
      progress: (repositories) =>
        progress.status(`retention: ${repositories} repositories looked at`, "retention"),
      gcProgress: (state) => progress.update(state),
    });
    if (run.collectionSkipped !== undefined) process.exitCode = 3;
  } finally {
    progress.end();
    await close();
  }
}

async function usage(file: string): Promise<void> {
  const config = await loadConfig(file);
  if (config.storage.quotas.length === 0) {
    throw new ConfigError([
      { key: "storage.quotas", message: "storage.quotas: no quota configured" },
    ]);
  }
  const { storage, close } = await openStorage(config, { mustExist: true });
  try {
    for (const quota of await storage.quotaUsage()) {
      const percent = quota.limit === 0 ? 100 : (100 * quota.bytes) / quota.limit;
      process.stdout.write(
        `${quota.repositories.join(", ")}: ${formatBytes(quota.bytes)} of ` +
          `${formatBytes(quota.limit)} (${percent.toFixed(1)}%), ${quota.blobs} blobs in ` +
          `${quota.repositoryCount} repositories\n`,
      );
    }
  } finally {
    await close();
  }
}

const program = new Command()
  .name("berth")
  .description(
    "A container image registry: OCI Distribution v1.1 with distribution's storage layout",
  )
  .version(packageVersion(), "-v, --version", "print the version");

program
  .command("serve")
  .description(
    "serve the registry (without a config: filesystem storage in ./data on 127.0.0.1:5000)",
  )
  .argument("[config]", "config.yml in distribution's format; REGISTRY_* variables override it")
  .action(serve);

program
  .command("garbage-collect")
  .alias("gc")
  .description(
    "delete the blobs no manifest references; safe beside running registries (docs/gc.md)",
  )
  .argument("<config>", "config.yml of the registry whose storage to collect")
  .option("-d, --dry-run", "list what would be deleted, delete nothing")
  .option("-m, --delete-untagged", "also delete manifests no tag points at, and what only they use")
  .option(
    "--delay <duration>",
    "keep what is younger than this (default storage.maintenance.gc.delay, 1h); 0s only while nothing pushes",
  )
  .action(garbageCollect);

program
  .command("retention")
  .description(
    "untag what storage.retention's policies do not keep, then collect what only those tags " +
      "reached where a policy says deleteUntagged (docs/retention.md)",
  )
  .argument("<config>", "config.yml with storage.retention.policies")
  .option("-d, --dry-run", "list what would be untagged and deleted, change nothing")
  .action(retention);

program
  .command("usage")
  .description("print the bytes each storage quota (storage.quotas) holds and its limit")
  .argument("<config>", "config.yml with storage.quotas")
  .action(usage);

program
  .command("driver-server")
  .description(
    "serve a built-in storage driver over the out-of-process driver protocol: what a " +
      "registry-storage-<name> executable runs (started by Berth, which sets BERTH_DRIVER_SOCKET)",
  )
  .argument("<driver>", "the built-in driver to serve, such as filesystem")
  .argument("[parameters]", "the driver's parameters as a JSON object", "{}")
  .action(async (driver: string, parameters: string) => {
    const { serveDriverProcess } = await import("../driver/remote/index.js");
    await serveDriverProcess((values) => createBuiltinDriver(driver, values), parameters);
  });

addP2PCommands(program);

program.parseAsync().catch(reportFailure);
