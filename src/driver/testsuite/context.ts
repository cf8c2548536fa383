// What the area files of the shared driver suite share: the driver under test, the test
// registration that gives each test its own directory, and the suite's options.

import type { DriverBase } from "../base.js";
import { DriverErrorCode, type StorageDriver } from "../driver.js";
import { randomName } from "./support.js";

/** The suite one area registers its tests with. */
export interface Suite {
  /** The driver under test; set by the suite's `before` hook, so read it inside a test only. */
  readonly driver: DriverBase;
  /** Registers a test that runs in a fresh directory, removed (and checked gone) afterwards. */
  readonly test: (title: string, body: (scope: Scope) => Promise<void>) => void;
  /** Bytes of the large-content test. */
  readonly largeSize: number;
  /** See DriverSuiteOptions.contentInMemory. */
  readonly contentInMemory: boolean;
  /** See DriverSuiteOptions.modTimeResolutionMs. */
  readonly modTimeResolutionMs: number;
}

/** One test's own directory below the root, and what it takes to remove it. */
export class Scope {
  readonly root = `/suite-${randomName(16)}`;

  constructor(private readonly driver: StorageDriver) {}

  /** A path below this test's directory; `names` may hold `/`. */
  path(...names: string[]): string {
    return [this.root, ...names].join("/");
  }

  /** Deletes the test's directory; nothing being there is fine. */
  async remove(): Promise<void> {
    try {
      await this.driver.delete(this.root);
    } catch (error) {
      if ((error as { code?: string }).code !== DriverErrorCode.PathNotFound) throw error;
    }
  }
}
