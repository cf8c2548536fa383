// Test support: external tools (docker-registry, skopeo, podman, Ceph) that some tests need.
// Outside CI a missing tool skips the test with a message naming the Debian package to install;
// in CI (CI=true) nothing skips, so a test whose tool is missing runs and fails.

import { spawnSync } from "node:child_process";

const found = new Map<string, boolean>();

/** True when `command` is on PATH. Checked once per process, at test definition time. */
export function hasCommand(command: string): boolean {
  let present = found.get(command);
  if (present === undefined) {
    present = spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
    found.set(command, present);
  }
  return present;
}

/**
 * The `skip` option for a test needing `commands`: false when they are all present or when running
 * in CI, else a message naming what is missing and the Debian packages that bring it.
 */
export function skipUnlessCommands(commands: string[], packages: string[]): false | string {
  if (process.env.CI === "true") return false;
  const missing = commands.filter((command) => !hasCommand(command));
  if (missing.length === 0) return false;
  return `needs ${missing.join(", ")}: apt-get install ${packages.join(" ")}`;
}
