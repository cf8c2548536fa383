// Test support: a throwaway redis-server (Debian's `redis-server`) on a free loopback port, no
// persistence, in a temp dir. Start it in `before`, stop it in `after`; `stop()` kills it and
// removes the dir, and a process 'exit' handler kills it should the test forget.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./docker-registry.js";
import { skipUnlessCommands } from "./tools.js";

/** The `skip` option of a test that starts a redis-server. */
export function skipUnlessRedis(): false | string {
  return skipUnlessCommands(["redis-server"], ["redis-server"]);
}

export interface RedisServer {
  /** `127.0.0.1:<port>`, as config.yml's `redis.addr` takes it. */
  addr: string;
  port: number;
  /** The password clients must give (`requirepass`), when started with one. */
  password?: string;
  stop(): Promise<void>;
}

/** True once something accepts connections on `port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Starts redis-server; with `password`, clients must authenticate. */
export async function startRedis(options: { password?: string } = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), "berth-redis-"));
  const port = await freePort();
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
    "--maxmemory-policy",
    "allkeys-lru",
  ];
  if (options.password !== undefined) args.push("--requirepass", options.password);
  const child: ChildProcess = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
  const kill = (): void => void child.kill("SIGKILL");
  process.once("exit", kill);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let running = true;
  void exited.then(() => void (running = false));
  const stop = async (): Promise<void> => {
    process.removeListener("exit", kill);
    if (running) {
      child.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (const started = Date.now(); !(await accepts(port));) {
    if (!running || Date.now() - started > 20_000) {
      await stop();
      throw new Error(`redis-server did not start on port ${port}: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { addr: `127.0.0.1:${port}`, port, password: options.password, stop };
}
