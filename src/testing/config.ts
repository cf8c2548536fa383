// Test support for the config tests: a driver of their own (so parameter pass-through does not
// depend on a real backend), the smallest valid config.yml, and the ConfigError an action throws.

import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../config/index.js";
import { InMemoryDriver, registerDriver } from "../driver/index.js";

/** The name of a driver registered for config tests only. */
export const testDriverName = "configtest";
registerDriver(testDriverName, () => new InMemoryDriver());

/** The smallest valid config.yml. */
export const minimalConfig = "version: 0.1\nstorage:\n  inmemory:\n";

/** The ConfigError `action` throws. */
export function configError(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

/**
 * Asserts that each config.yml fragment (a `storage: inmemory` line is added when it has no
 * storage section) is refused with exactly one problem, at `key`, whose message matches.
 */
export function assertProblems(cases: [key: string, yaml: string, message: RegExp][]): void {
  for (const [key, yaml, message] of cases) {
    const storage = yaml.includes("storage:") ? "" : "storage: inmemory\n";
    const error = configError(() => parseConfig(`version: 0.1\n${storage}${yaml}`, {}));
    assert.deepEqual(
      error.problems.map((problem) => problem.key),
      [key],
      `${key}: ${error.message}`,
    );
    assert.match(error.problems[0]!.message, message);
    assert.ok(error.message.includes(key));
  }
}
