// Test support: a directory of `registry-storage-<name>` shell scripts that run
// `berth driver-server <driver> "$1"` from this checkout's build, as a user's would.

import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The built CLI (dist/src/cli/main.js). */
export const CLI = fileURLToPath(new URL("../cli/main.js", import.meta.url));

/**
 * Writes into `directory` one script per entry of `drivers`: name → [built-in driver, extra
 * shell lines run first]. Returns `directory`.
 */
export function driverScripts(
  directory: string,
  drivers: Record<string, [driver: string, ...prelude: string[]]>,
): string {
  mkdirSync(directory, { recursive: true });
  for (const [name, [driver, ...prelude]] of Object.entries(drivers)) {
    const file = join(directory, `registry-storage-${name}`);
    const body = [
      "#!/bin/sh",
      ...prelude,
      `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} driver-server ${driver} "$1"`,
      "",
    ];
    writeFileSync(file, body.join("\n"));
    chmodSync(file, 0o755);
  }
  return directory;
}
