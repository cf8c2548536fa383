// Where an out-of-process driver's executable is looked for: `registry-storage-<name>` in the
// directories of PATH (seed 000). Kept apart from ./remote so that config can ask without loading
// gRPC.

import { accessSync, constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** The executable an out-of-process driver named `name` is looked up as. */
export function driverExecutableName(name: string): string {
  return `registry-storage-${name}`;
}

/** The candidates for `name` in PATH order; none for a name with anything but [A-Za-z0-9._-]. */
function candidates(name: string, path: string): string[] {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return [];
  return path
    .split(delimiter)
    .filter((directory) => directory !== "")
    .map((directory) => join(directory, driverExecutableName(name)));
}

/** The full path of `registry-storage-<name>` in a directory of PATH (the first executable one). */
export async function findDriverExecutable(
  name: string,
  path = process.env.PATH ?? "",
): Promise<string | undefined> {
  for (const candidate of candidates(name, path)) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * findDriverExecutable for reading config.yml at start (synchronous, as the config reader is;
 * never on a request path).
 */
export function findDriverExecutableAtStart(
  name: string,
  path = process.env.PATH ?? "",
): string | undefined {
  return candidates(name, path).find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
