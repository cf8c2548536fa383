// Test support: the drivers the registry storage layer is tested over, each with its own temp
// state, and what the storage tests share (a per-suite driver and registry, assertions on stored
// paths and error codes). The filesystem driver is imported for its registration (a no-op once the
// driver index imports it too: a module loads once).

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { createDriver, type StorageDriver } from "../driver/index.js";
import "../driver/filesystem/index.js";
import {
  createRegistryStorage,
  isRegistryError,
  type Registry,
  type RegistryErrorCode,
  type RegistryStorageOptions,
} from "../storage/index.js";

/**
 * distribution's storage root, written out: tests check the layout byte for byte, independently of
 * the path mapper (src/storage/paths.ts).
 */
export const ROOT = "/docker/registry/v2";

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

/** The driver of one storage test suite, and registries over it. */
export interface StorageUnderTest {
  /** The suite's driver (set once its `before` hook has run). */
  readonly driver: StorageDriver;
  /** The filesystem driver's root directory; undefined for other drivers. */
  readonly rootDirectory: string | undefined;
  /** A registry over the suite's driver; deleting enabled unless `options` say otherwise. */
  readonly registry: (options?: RegistryStorageOptions) => Registry;
}

/**
 * A fresh driver `name` for the enclosing suite: created in its `before` hook, its state removed in
 * its `after` hook.
 */
export function useStorage(name: (typeof STORAGE_TEST_DRIVERS)[number]): StorageUnderTest {
  let test: TestDriver | undefined;
  before(async () => {
    test = await createTestDriver(name);
  });
  after(() => test?.cleanup());
  const driver = (): StorageDriver => {
    if (test === undefined) throw new Error("useStorage: the suite's before hook has not run");
    return test.driver;
  };
  return {
    get driver() {
      return driver();
    },
    get rootDirectory() {
      return test?.rootDirectory;
    },
    registry: (options = { deleteEnabled: true }) => createRegistryStorage(driver(), options),
  };
}

/** `parts` as an async iterable, one chunk each. */
export function chunks(...parts: Buffer[]): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (const part of parts) yield part;
  })();
}

/** An assert.rejects/throws check: a RegistryError with `code`. */
export function rejectsWith(code: RegistryErrorCode): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isRegistryError(error), `expected a RegistryError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

/** The content at `path` as UTF-8. */
export async function text(driver: StorageDriver, path: string): Promise<string> {
  return Buffer.from(await driver.getContent(path)).toString("utf8");
}

/** True when `path` exists in `driver`. */
export async function exists(driver: StorageDriver, path: string): Promise<boolean> {
  try {
    await driver.stat(path);
    return true;
  } catch {
    return false;
  }
}
