// The shared storage driver test suite. Every driver, in-tree or third-party, runs the same tests
// by handing `runDriverSuite` a constructor; the tests are registered with node:test. They cover
// what distribution's driver suite covers (registry/storage/driver/testsuites) and the parts of
// Berth's contract it leaves open: resumable writers, cancel, walk order, the error fields.
//
// Every test works below its own fresh top-level directory (`/suite-<random>`) and deletes it at
// the end, then checks that nothing is left there, so the tests never see each other's files and
// a driver whose backend is shared (a bucket, a container) can run the suite alongside other data.

import { before, describe, it } from "node:test";
import { DriverBase } from "../base.js";
import { DriverErrorCode, type StorageDriver } from "../driver.js";
import { cancellationTests } from "./cancellation.js";
import { concurrencyTests } from "./concurrency.js";
import { contentTests } from "./content.js";
import { Scope, type Suite } from "./context.js";
import { copyTests } from "./copy.js";
import { pathTests } from "./paths.js";
import { redirectTests } from "./redirect.js";
import { removalTests } from "./removal.js";
import { rejectsWith } from "./support.js";
import { treeTests } from "./tree.js";
import { walkTests } from "./walk.js";
import { writerTests } from "./writer.js";

const MiB = 1024 * 1024;

/** Builds the driver under test: a fresh instance, or one shared by the whole suite. */
export type DriverConstructor = () => StorageDriver | Promise<StorageDriver>;

/** Knobs for backends that are slow or different; the defaults suit local drivers. */
export interface DriverSuiteOptions {
  /**
   * Bytes streamed through a writer and back through a reader by the large-content test. Default
   * 64 MiB. The memory bound that test checks (RSS growth under half the size, at least 32 MiB)
   * only means something at 64 MiB and above.
   */
  largeSize?: number;
  /**
   * True for a driver that keeps content in process memory (inmemory): the large-content test then
   * does not bound memory while writing, only while reading.
   */
  contentInMemory?: boolean;
  /**
   * The coarsest step of the backend's modification times, in milliseconds (S3 and Azure report
   * whole seconds). The modTime test waits a little longer than this between two writes. Default
   * 1000.
   */
  modTimeResolutionMs?: number;
  /** Timeout of each test in milliseconds. Default 120000. */
  timeout?: number;
}

/**
 * Registers the shared driver tests with node:test under `describe("storage driver suite: <name>")`.
 * `construct` is called once, before the first test; what it returns is wrapped in DriverBase
 * (path checks) unless it already is one, as `createDriver` returns. Anything to tear down
 * afterwards (a temp directory, a server) belongs in the caller's own `after` hook.
 */
export function runDriverSuite(
  name: string,
  construct: DriverConstructor,
  options: DriverSuiteOptions = {},
): void {
  const largeSize = options.largeSize ?? 64 * MiB;
  const modTimeResolutionMs = options.modTimeResolutionMs ?? 1000;
  const timeout = options.timeout ?? 120_000;

  describe(`storage driver suite: ${name}`, () => {
    let driver: DriverBase;

    before(
      async () => {
        const built = await construct();
        driver = built instanceof DriverBase ? built : new DriverBase(built);
      },
      { timeout },
    );

    /** Registers a test that runs in a fresh directory, removed (and checked gone) afterwards. */
    function test(title: string, body: (scope: Scope) => Promise<void>): void {
      it(title, { timeout }, async () => {
        const scope = new Scope(driver);
        try {
          await body(scope);
        } catch (error) {
          await scope.remove().catch(() => {});
          throw error;
        }
        await scope.remove();
        await rejectsWith(
          driver,
          driver.stat(scope.root),
          { code: DriverErrorCode.PathNotFound },
          "after clean-up",
        );
      });
    }
    const suite: Suite = {
      get driver() {
        return driver;
      },
      test,
      largeSize,
      contentInMemory: options.contentInMemory ?? false,
      modTimeResolutionMs,
    };
    pathTests(suite);
    contentTests(suite);
    copyTests(suite);
    writerTests(suite);
    treeTests(suite);
    removalTests(suite);
    redirectTests(suite);
    walkTests(suite);
    concurrencyTests(suite);
    cancellationTests(suite);
  });
}
