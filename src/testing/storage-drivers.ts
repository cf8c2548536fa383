// Test support: the drivers the registry storage layer is tested over, each with its own temp
// state. The filesystem driver is imported for its registration (a no-op once the driver index
// imports it too: a module loads once).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDriver, type StorageDriver } from "../driver/index.js";
import "../driver/filesystem/index.js";

/** A driver for one test, and how to remove its state. */
export interface TestDriver {
  driver: StorageDriver;
  /** The filesystem root, for the filesystem driver. */
  rootDirectory?: string;
  cleanup(): Promise<void>;
}

/** The names of the drivers storage tests run over. */
export const STORAGE_TEST_DRIVERS = ["inmemory", "filesystem"] as const;

/** A fresh driver `name` with empty storage. */
export async function createTestDriver(
  name: (typeof STORAGE_TEST_DRIVERS)[number],
): Promise<TestDriver> {
  if (name === "inmemory") {
    return { driver: await createDriver("inmemory"), cleanup: async () => undefined };
  }
  const rootDirectory = await mkdtemp(join(tmpdir(), "berth-storage-"));
  return {
    driver: await createDriver("filesystem", { rootdirectory: rootDirectory }),
    rootDirectory,
    cleanup: () => rm(rootDirectory, { recursive: true, force: true }),
  };
}
