// Test support: Debian's dockerd and containerd (packages docker.io and containerd), each started
// in a temp directory of its own (data, state, pid file and unix sockets there) so it clashes with
// no system daemon and leaves nothing behind, and the docker CLI and ctr pointed at them. dockerd
// runs as this machine allows: `--iptables=false --bridge=none --storage-driver=vfs`; it starts
// its own containerd under its exec root. Docker treats 127.0.0.0/8 registries as insecure
// (plain HTTP) by default; ctr is told with --plain-http.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** How long one docker or ctr command may take before it counts as failed. */
const COMMAND_TIMEOUT_MS = 180_000;
/** How long a daemon may take to answer after start, on a loaded machine. */
const START_TIMEOUT_MS = 120_000;

/** A daemon started by these helpers. */
interface Daemon {
  /** Runs its client (`docker` or `ctr`) with `args`; rejects with its stderr on failure. */
  run(args: string[], input?: string): Promise<string>;
  /** What the daemon logged, for assertion messages. */
  output(): string;
  /** Stops the daemon (SIGTERM, then SIGKILL after 60 s) and removes its directory. */
  stop(): Promise<void>;
}

function runClient(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`${command} ${args.join(" ")} failed: ${stderr || error.message}`)); // prettier-ignore
        else resolve(stdout);
      },
    );
    child.stdin!.end(input);
  });
}

/**
 * Starts `command args` as the daemon owning `dir`, waits until `run(["version"])` answers, and
 * returns it; on failure stops it, removes `dir` and throws with what it logged.
 */
async function startDaemon(
  command: string,
  args: string[],
  dir: string,
  run: Daemon["run"],
): Promise<Daemon> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let logged = "";
  const keep = (text: string): void => {
    logged = (logged + text).slice(-64 * 1024);
  };
  child.stdout.setEncoding("utf8").on("data", keep);
  child.stderr.setEncoding("utf8").on("data", keep);
  const output = (): string => logged;
  const exited = once(child, "exit");
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(child, command, output, () => run(["version"]));
  } catch (error) {
    await stop();
    throw error;
  }
  return { run, output, stop };
}

/** Retries `probe` until it resolves, the daemon exits, or the start timeout passes. */
async function waitFor(
  child: ChildProcess,
  name: string,
  output: () => string,
  probe: () => Promise<unknown>,
): Promise<void> {
  // prettier-ignore
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${name} exited (${child.signalCode ?? child.exitCode}): ${output()}`);
    try {
      await probe();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${name} did not answer: ${String(error)}\n${output()}`); // prettier-ignore
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Starts dockerd in `dir` (created); `run` calls the docker CLI with its own config directory. */
export async function startDockerd(dir: string): Promise<Daemon> {
  await mkdir(join(dir, "config"), { recursive: true });
  const socket = join(dir, "docker.sock");
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(dir, "config") }; // prettier-ignore
  return startDaemon(
    "dockerd",
    [
      "--iptables=false",
      "--bridge=none",
      "--storage-driver=vfs",
      "--data-root", join(dir, "data"),
      "--exec-root", join(dir, "exec"),
      "--pidfile", join(dir, "docker.pid"),
      "-H", `unix://${socket}`,
    ], // prettier-ignore
    dir,
    (args, input) => runClient("docker", args, env, input),
  );
}

/** Starts containerd in `dir` (created) with a config of its own; `run` calls ctr at its socket. */
export async function startContainerd(dir: string): Promise<Daemon> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
  // TOML's basic strings are JSON strings for these paths.
  await writeFile(
    config,
    [
      "version = 2",
      `root = ${JSON.stringify(join(dir, "root"))}`,
      `state = ${JSON.stringify(join(dir, "state"))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]",
      `  address = ${JSON.stringify(socket)}`,
      "[ttrpc]",
      `  address = ${JSON.stringify(join(dir, "ttrpc.sock"))}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(join(dir, "opt"))}`,
      "",
    ].join("\n"),
  );
  return startDaemon("containerd", ["--config", config], dir, (args, input) =>
    runClient("ctr", ["--address", socket, ...args], process.env, input),
  );
}
