// Test support: podman with its own storage under a test's directory, using a registry as the
// mirror of docker.io through a registries.conf (the lines docs/proxy.md gives).

import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Runs podman with its arguments and returns its stdout; the error says podman's stderr. */
export type Podman = (args: string[]) => Promise<string>;

/**
 * Writes `<dir>/registries.conf` making `mirror` (such as `127.0.0.1:5000/docker.io`) the
 * mirror of docker.io, and returns a podman using it, with vfs storage under `dir`.
 */
export async function podmanWithMirror(dir: string, mirror: string): Promise<Podman> {
  const conf = join(dir, "registries.conf");
  await writeFile(
    conf,
    [
      "[[registry]]",
      'prefix = "docker.io"',
      'location = "registry-1.docker.io"',
      "[[registry.mirror]]",
      `location = "${mirror}"`,
      "insecure = true",
      "",
    ].join("\n"),
  );
  const storage = [
    "--root",
    join(dir, "podman/root"),
    "--runroot",
    join(dir, "podman/runroot"),
    "--storage-driver",
    "vfs",
  ];
  return async (args) => {
    try {
      const { stdout } = await run("podman", [...storage, ...args], {
        timeout: 120_000,
        env: { ...process.env, CONTAINERS_REGISTRIES_CONF: conf },
      });
      return stdout;
    } catch (error) {
      const { stderr, message } = error as { stderr?: string; message: string };
      throw new Error(`podman ${args[0]} failed: ${stderr || message}`);
    }
  };
}
