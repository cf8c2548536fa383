// The registries under test. Each runs as its own child process on a throwaway filesystem root,
// so its memory and CPU are read from /proc apart from the load generator's: Berth through its
// CLI (`node dist/src/cli/main.js serve config.yml`), distribution as Debian's `docker-registry`.
// Both get the same distribution-shaped config: filesystem storage, loopback address, warnings
// only, no access log, no upload purging.

import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../src/testing/docker-registry.js";
import { ProcessStats } from "./process.js";

/** A registry the workloads run against. */
export interface RegistryUnderTest {
  /** How the table names it: "Berth", "distribution", or the URL given. */
  readonly name: string;
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string;
  /** `127.0.0.1:<port>`, the host part of image references. */
  readonly host: string;
  /** The server process, when known: memory and CPU figures need it. */
  readonly process: ProcessStats | undefined;
  /**
   * CPU seconds used so far by the storage backend's processes, when the bench started them (the
   * Ceph daemons of `--driver s3`: on 2 cores the gateway competes with the registry for CPU).
   */
  readonly backendCpuSeconds?: () => Promise<number>;
  /** Stops the process (when the bench started it) and removes its root. */
  stop(): Promise<void>;
}

/** The compiled Berth CLI beside this compiled file (dist/bench → dist/src/cli). */
export const BERTH_CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

/** Options for starting Berth. */
export interface BerthOptions {
  /** The CLI to run; default BERTH_CLI. Another build lets an experiment be measured in a run. */
  cli?: string | undefined;
  /**
   * Run Berth under `node --cpu-prof`, writing the profile into this directory on exit (and the
   * driver process too, when it runs out of process).
   */
  cpuProfileDir?: string | undefined;
  /** Extra environment variables for Berth (e.g. UV_THREADPOOL_SIZE). */
  env?: Record<string, string>;
  /**
   * Run the filesystem driver out of process: config.yml names `benchfs`, and a
   * `registry-storage-benchfs` script on PATH runs `berth driver-server filesystem` (issue 17's
   * cost). The registry is then named "Berth IPC".
   */
  outOfProcess?: boolean;
  /** The storage section's driver and parameters instead of a filesystem root (`{ rados: {...} }`). */
  storage?: Record<string, unknown>;
  /** The registry's name in the results; default "Berth". */
  name?: string;
  /** More of config.yml's `http` section (`debug` with Prometheus, for the request counts). */
  http?: Record<string, unknown>;
}

/** The out-of-process driver's name in config.yml (`registry-storage-benchfs` on PATH). */
const IPC_DRIVER = "benchfs";

/**
 * The environment settings and node flags on the CLI's first line (`#!/usr/bin/env -S NAME=value
 * node --flag ...`), which `berth` and `npm start` run it with: the bench starts Berth as a user's
 * command does. None for a plain `#!/usr/bin/env node` (older builds given with --berth-cli).
 */
export async function launchCommand(
  cli: string,
): Promise<{ env: Record<string, string>; flags: string[] }> {
  const first = (await readFile(cli, "utf8")).split("\n", 1)[0] ?? "";
  const match = /^#!\/usr\/bin\/env -S((?: [A-Za-z_]+=\S*)*) node (.+)$/.exec(first);
  if (match === null) return { env: {}, flags: [] };
  const env: Record<string, string> = {};
  for (const setting of match[1]!
    .trim()
    .split(/\s+/)
    .filter((word) => word !== "")) {
    const equals = setting.indexOf("=");
    env[setting.slice(0, equals)] = setting.slice(equals + 1);
  }
  return { env, flags: match[2]!.trim().split(/\s+/) };
}

/** Starts Berth from the checkout's build. */
export async function startBerth(options: BerthOptions = {}): Promise<RegistryUnderTest> {
  const cli = options.cli ?? BERTH_CLI;
  if (!existsSync(cli)) throw new Error(`Berth's CLI is not built: ${cli} is missing`);
  const launch = await launchCommand(cli);
  const nodeFlags = [
    ...launch.flags,
    ...(options.cpuProfileDir === undefined
      ? []
      : ["--cpu-prof", "--cpu-prof-dir", options.cpuProfileDir]),
  ];
  const serve: Command = (config) => [process.execPath, [...nodeFlags, cli, "serve", config]];
  const env = { ...launch.env, ...options.env };
  const storage = options.storage;
  if (storage !== undefined) {
    return startChild(options.name ?? "Berth", serve, env, () =>
      Promise.resolve({ storage, env: {}, http: options.http }),
    );
  }
  if (options.outOfProcess !== true) return startChild("Berth", serve, env);
  return startChild("Berth IPC", serve, env, async (work, root) => {
    const bin = join(work, "bin");
    await mkdir(bin);
    const script = join(bin, `registry-storage-${IPC_DRIVER}`);
    await writeFile(
      script,
      `#!/bin/sh\nexec ${[process.execPath, ...nodeFlags, cli].map((word) => JSON.stringify(word)).join(" ")} driver-server filesystem "$1"\n`,
      { mode: 0o755 },
    );
    return {
      storage: { [IPC_DRIVER]: { rootdirectory: root } },
      env: { PATH: `${bin}:${process.env.PATH ?? ""}` },
    };
  });
}

/** What a registry's set-up changes: the storage section of its config and its environment. */
type Setup = (
  work: string,
  root: string,
) => Promise<{
  storage: Record<string, unknown>;
  env: Record<string, string>;
  http?: Record<string, unknown> | undefined;
}>;

/**
 * Starts Debian's docker-registry (distribution 2.8.2), on a filesystem root unless `storage`
 * gives its storage section (`{ s3: {...}, redirect: {...} }`).
 */
export async function startDistribution(
  options: { name?: string; storage?: Record<string, unknown> } = {},
): Promise<RegistryUnderTest> {
  const { storage } = options;
  return startChild(
    options.name ?? "distribution",
    (config) => ["docker-registry", ["serve", config]],
    // Its AWS SDK for Go panics at start with AWS_CA_BUNDLE set (as some machines set it for
    // every tool): "unable to load custom CA bundle, HTTPClient's transport unsupported type".
    storage === undefined ? {} : { AWS_CA_BUNDLE: "" },
    storage === undefined ? undefined : () => Promise.resolve({ storage, env: {} }),
  );
}

/** A registry someone else runs; `pid` enables its memory and CPU figures. */
export async function connectRegistry(
  url: string,
  pid: number | undefined,
): Promise<RegistryUnderTest> {
  const parsed = new URL(url);
  if (parsed.protocol !== "http:") throw new Error(`--url ${url}: only http:// is supported`);
  const base = parsed.origin;
  await waitForApi(base, 5_000, undefined);
  return {
    name: base,
    url: base,
    host: parsed.host,
    process: pid === undefined ? undefined : new ProcessStats(pid),
    stop: async () => undefined,
  };
}

/** Whether an executable is on PATH. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? "")
    .split(":")
    .some((directory) => directory !== "" && existsSync(join(directory, command)));
}

type Command = (configPath: string) => [string, string[]];

async function startChild(
  name: string,
  command: Command,
  env: Record<string, string>,
  setup?: Setup,
): Promise<RegistryUnderTest> {
  const work = await mkdtemp(
    join(tmpdir(), `berth-bench-${name.toLowerCase().replace(/\W+/g, "-")}-`),
  );
  const root = join(work, "root");
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const configPath = join(work, "config.yml");
  const custom = await setup?.(work, root);
  // JSON is YAML, so no serializer is needed.
  const config = {
    version: 0.1,
    log: { level: "warn", accesslog: { disabled: true } },
    storage: {
      ...(custom?.storage ?? { filesystem: { rootdirectory: root } }),
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: host, secret: "berth-bench-secret", ...custom?.http },
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));

  const [file, args] = command(configPath);
  const child = spawn(file, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env, ...custom?.env },
  });
  let output = "";
  const keep = (text: string) => (output = (output + text).slice(-8192));
  child.stdout?.setEncoding("utf8").on("data", keep);
  child.stderr?.setEncoding("utf8").on("data", keep);
  const url = `http://${host}`;
  try {
    await waitForApi(url, 20_000, child);
  } catch (error) {
    child.kill("SIGKILL");
    await rm(work, { recursive: true, force: true });
    throw new Error(`${name} did not start: ${(error as Error).message}\n${output}`);
  }
  if (child.pid === undefined) throw new Error(`${name} has no pid`);
  return {
    name,
    url,
    host,
    process: new ProcessStats(child.pid),
    stop: async () => {
      await stopChild(child);
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** SIGTERM, so a `--cpu-prof` child exits normally and writes its profile; SIGKILL after 10 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitForApi(
  url: string,
  timeoutMs: number,
  child: ChildProcess | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child !== undefined && child.exitCode !== null)
      throw new Error(`exited with ${child.exitCode}`);
    try {
      const status = await getStatus(`${url}/v2/`);
      if (status === 200) return;
      last = `GET /v2/ answered ${status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`GET ${url}/v2/ did not answer 200 within ${timeoutMs} ms (${last})`);
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (response) => {
      response.resume();
      response.on("end", () => resolve(response.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}
