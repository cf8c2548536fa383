// Test support: Debian's `docker-registry` (distribution 2.8.2) serving a storage root, for interop
// tests that prove Berth's layout is distribution's. Starts the binary on a free loopback port with
// a generated config (filesystem driver at `rootDirectory`, delete enabled, no auth, upload purging
// off so it never touches a root a test is inspecting) and stops it again.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running docker-registry. */
export interface DockerRegistry {
  /** `127.0.0.1:<port>`, the host part of image references (`<host>/<repo>:<tag>`). */
  readonly host: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The storage root it serves. */
  readonly rootDirectory: string;
  /** What it wrote to stdout and stderr so far (for assertion messages). */
  output(): string;
  /** Stops the process and removes its config; the storage root stays. */
  stop(): Promise<void>;
}

/** Options of `startDockerRegistry`. */
export interface DockerRegistryOptions {
  /** Allow DELETE of manifests and blobs; default true. */
  deleteEnabled?: boolean;
  /** Serve read-only (`storage.maintenance.readonly`); default false. */
  readOnly?: boolean;
  /** An htpasswd file (bcrypt, `htpasswd -B`): require Basic auth for everything. */
  htpasswd?: string;
  /** Milliseconds to wait for `/v2/` to answer; default 10000. */
  startTimeoutMs?: number;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port from listen(0)");
  return address.port;
}

/** Starts `docker-registry` serving `rootDirectory` (created by the registry if absent). */
export async function startDockerRegistry(
  rootDirectory: string,
  options: DockerRegistryOptions = {},
): Promise<DockerRegistry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const configDir = await mkdtemp(join(tmpdir(), "berth-docker-registry-"));
  const configPath = join(configDir, "config.yml");
  // JSON is YAML: no serializer needed.
  const config = {
    version: 0.1,
    log: { level: "warn", accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: rootDirectory },
      delete: { enabled: options.deleteEnabled ?? true },
      maintenance: {
        uploadpurging: { enabled: false },
        readonly: { enabled: options.readOnly ?? false },
      },
    },
    http: { addr: host, secret: "berth-test-secret" },
    ...(options.htpasswd !== undefined
      ? { auth: { htpasswd: { realm: "berth-test", path: options.htpasswd } } }
      : {}),
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));

  let output = "";
  const child = spawn("docker-registry", ["serve", configPath], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.setEncoding("utf8").on("data", (text: string) => (output += text));
  child.stderr.setEncoding("utf8").on("data", (text: string) => (output += text));
  const exited = once(child, "exit");

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    await rm(configDir, { recursive: true, force: true });
  };

  try {
    await waitForRegistry(child, `http://${host}/v2/`, options.startTimeoutMs ?? 10_000);
  } catch (error) {
    await stop();
    throw new Error(`docker-registry did not start on ${host}: ${String(error)}\n${output}`);
  }
  return { host, url: `http://${host}`, rootDirectory, output: () => output, stop };
}

async function waitForRegistry(child: ChildProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status === 200 || response.status === 401) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
