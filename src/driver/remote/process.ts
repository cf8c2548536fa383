// Over 400 lines: one class, a driver process's life (start, handshake, restarts, calls in flight).
// A driver process: `registry-storage-<name>` started with its parameters as JSON in its first
// argument and the socket to serve on in BERTH_DRIVER_SOCKET, ready once it prints its handshake
// line and answers Version with a compatible version. Its stderr goes to the log; when it dies it
// is started again with backoff, and the calls in flight fail saying so.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import {
  DriverErrorCode,
  InvalidParameterError,
  InvalidStorageDriverError,
  type DriverParameters,
  type StorageDriverError,
} from "../driver.js";
import { connectClient, type DriverConnection, type ServiceClient } from "./client.js";
import {
  CALL_BATCH_MINOR,
  CALL_STREAM_MINOR,
  COMMIT_TO_MINOR,
  IF_ABSENT_MINOR,
  SOCKET_ENV,
  TOUCH_MINOR,
  incompatibility,
  speaksMinor,
} from "./protocol.js";

/** Where a driver process's stderr lines and Berth's notes about the process go. */
export type DriverLog = (level: "info" | "warn" | "error", message: string) => void;

export interface DriverProcessOptions {
  /** How long a start may take, handshake and Version included. Default 30 s. */
  startTimeoutMs?: number;
  /** First delay before restarting a process that died; doubles up to `maxRestartDelayMs`. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** Default: lines on Berth's stderr, prefixed with the executable's name. */
  log?: DriverLog;
}

/** The first line a driver prints on stdout: ready, or why it cannot start. */
interface Handshake {
  ready?: boolean;
  error?: { code?: string; message?: string; parameter?: string };
}

/**
 * glibc malloc settings a driver process gets unless Berth's environment sets them: the protocol
 * moves content in messages of about 1 MiB, which glibc would otherwise map and unmap one by one
 * (or trim from its heap), so that every message's buffers fault their pages in afresh. Measured
 * (1 GiB written and read through `berth driver-server filesystem`): the driver process's CPU
 * 5.2 → 4.1 s and its page faults 46k → 27k. Other C libraries ignore them.
 */
const ALLOCATOR_ENV = {
  MALLOC_MMAP_THRESHOLD_: String(32 * 1024 * 1024),
  MALLOC_TRIM_THRESHOLD_: String(128 * 1024 * 1024),
};

/** Processes still running, stopped when Berth exits. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of running) child.kill("SIGTERM");
  });
}

/** One started process and its client. */
interface Generation {
  child: ChildProcess;
  client: ServiceClient;
  startedAt: number;
  /** The root below which its writers lend files (protocol 1.2's local writes), if they do. */
  localRoot: string | undefined;
  /** Whether it serves the call stream (protocol 1.3). */
  callStream: boolean;
  /** Whether it serves Touch (protocol 1.4). */
  touch: boolean;
  /** Whether it reads batches on the call stream (protocol 1.5). */
  callBatches: boolean;
  /** Whether its writers commit to another path (protocol 1.7's `commit_to`). */
  commitTo: boolean;
  /** Whether its writers commit unless a file is stored there (protocol 1.8's `if_absent`). */
  commitToIfAbsent: boolean;
  /** Set once the process exited: how. */
  exit?: string;
  exited: Promise<void>;
}

/** Manages the process of one out-of-process driver; the RemoteDriver's DriverConnection. */
export class DriverProcess implements DriverConnection {
  private current: Generation | undefined;
  private starting: Promise<Generation> | undefined;
  private lastFailure: Error | undefined;
  private restartDelay: number;
  private restarts = 0;
  private closed = false;
  private directory: string | undefined;
  private readonly log: DriverLog;
  private readonly label: string;

  constructor(
    /** The name Berth knows the driver by. */
    readonly name: string,
    /** The executable's full path. */
    readonly executable: string,
    private readonly parameters: DriverParameters,
    private readonly options: DriverProcessOptions = {},
  ) {
    this.restartDelay = options.restartDelayMs ?? 100;
    this.label = `registry-storage-${name}`;
    this.log =
      options.log ??
      ((level, message) => process.stderr.write(`${this.label} ${level}: ${message}\n`));
  }

  /** The pid of the running process, if one is running. */
  get pid(): number | undefined {
    return this.current?.exit === undefined ? this.current?.child.pid : undefined;
  }

  /** How many times the process was started again after dying. */
  get restartCount(): number {
    return this.restarts;
  }

  /** The running process's local root (see DriverConnection.localRoot). */
  get localRoot(): string | undefined {
    return this.current?.exit === undefined ? this.current?.localRoot : undefined;
  }

  /** Whether the running process serves the call stream (protocol 1.3's `Calls`). */
  get callStream(): boolean {
    return this.current?.exit === undefined && this.current?.callStream === true;
  }

  /** Whether the running process serves Touch (protocol 1.4). */
  get touch(): boolean {
    return this.current?.exit === undefined && this.current?.touch === true;
  }

  /** Whether the running process reads batches on the call stream (protocol 1.5). */
  get callBatches(): boolean {
    return this.current?.exit === undefined && this.current?.callBatches === true;
  }

  /** Whether the running process's writers commit to another path (protocol 1.7). */
  get commitTo(): boolean {
    return this.current?.exit === undefined && this.current?.commitTo === true;
  }

  /** Whether the running process's writers commit unless a file is stored there (1.8). */
  get commitToIfAbsent(): boolean {
    return this.current?.exit === undefined && this.current?.commitToIfAbsent === true;
  }

  /** Starts the process for the first time; rejects with why it cannot run. */
  async start(): Promise<void> {
    this.directory = await mkdtemp(join(tmpdir(), "berth-driver-"));
    this.starting = this.launch();
    try {
      await this.starting;
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      this.starting = undefined;
    }
  }

  async client(): Promise<ServiceClient> {
    if (this.closed) {
      throw new InvalidStorageDriverError(this.name, `the driver ${this.name} was closed`);
    }
    if (this.current !== undefined && this.current.exit === undefined) return this.current.client;
    const startTimeout = this.options.startTimeoutMs ?? 30_000;
    const restarting = this.starting ?? this.scheduleRestart();
    let handle: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      handle = setTimeout(
        () =>
          reject(
            new Error(
              `${this.label} is not running and did not restart within ${startTimeout} ms` +
                (this.lastFailure ? `: ${this.lastFailure.message}` : ""),
            ),
          ),
        startTimeout,
      );
    });
    try {
      return (await Promise.race([restarting, gaveUp])).client;
    } finally {
      clearTimeout(handle);
    }
  }

  async explain(failure: grpc.ServiceError): Promise<string> {
    const generation = this.current;
    // The call may fail before the process's exit is reported: give it a moment.
    if (generation !== undefined && generation.exit === undefined) {
      await Promise.race([generation.exited, new Promise((r) => setTimeout(r, 200))]);
    }
    if (this.closed) return `the driver ${this.name} was closed`;
    if (generation?.exit !== undefined) {
      return `the driver process ${this.label} (pid ${generation.child.pid}) ${generation.exit}; it is being restarted, try again`;
    }
    return `lost the connection to the driver process ${this.label}: ${failure.details}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const generation = this.current;
    if (generation !== undefined) {
      generation.client.close();
      if (generation.exit === undefined) {
        generation.child.stdin?.end();
        generation.child.kill("SIGTERM");
        const forced = setTimeout(() => generation.child.kill("SIGKILL"), 5000);
        await generation.exited;
        clearTimeout(forced);
      }
    }
    if (this.directory !== undefined) {
      await rm(this.directory, { recursive: true, force: true });
    }
  }

  private scheduleRestart(): Promise<Generation> {
    const delay = this.restartDelay;
    this.restartDelay = Math.min(delay * 2, this.options.maxRestartDelayMs ?? 10_000);
    const starting = (async () => {
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.closed) throw new InvalidStorageDriverError(this.name, "closed");
      this.restarts++;
      this.log("warn", `restarting (attempt ${this.restarts}, after ${delay} ms)`);
      return this.launch();
    })();
    this.starting = starting;
    starting.then(
      () => (this.starting = undefined),
      (error: Error) => {
        this.lastFailure = error;
        this.log("error", `restart failed: ${error.message}`);
        this.starting = undefined;
      },
    );
    return starting;
  }

  /** Starts a process, waits for its handshake and checks its version. */
  private async launch(): Promise<Generation> {
    const socket = join(
      this.directory!,
      `driver-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.sock`,
    );
    const child = spawn(this.executable, [JSON.stringify(this.parameters)], {
      env: { ...ALLOCATOR_ENV, ...process.env, [SOCKET_ENV]: socket },
      stdio: ["pipe", "pipe", "pipe"],
    });
    running.add(child);
    installExitHook();
    const stderrTail: string[] = [];
    createInterface({ input: child.stderr }).on("line", (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
      this.log("info", line);
    });
    let exit: string | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        exit = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        running.delete(child);
        resolve();
      });
      child.once("error", (error) => {
        exit = `could not be started: ${error.message}`;
        running.delete(child);
        resolve();
      });
    });
    child.stdin.on("error", () => {});
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      (stream as unknown as { unref?: () => void }).unref?.();
    }
    child.unref();

    const failed = (why: string): StorageDriverError => {
      child.kill("SIGKILL");
      const tail = stderrTail.length > 0 ? `; its stderr: ${stderrTail.join("\n")}` : "";
      return new InvalidStorageDriverError(
        this.name,
        `driver executable ${this.executable} ${why}${tail}`,
      );
    };
    const startTimeout = this.options.startTimeoutMs ?? 30_000;
    const handshake = await this.handshake(child, exited, startTimeout);
    if (handshake === "timeout") throw failed(`did not say it was ready within ${startTimeout} ms`);
    if (handshake === "exited") {
      // Let the last lines of stderr arrive.
      await new Promise((resolve) => setImmediate(resolve));
      throw failed(`${exit ?? "exited"} before it was ready`);
    }
    if (handshake.error !== undefined) {
      child.kill("SIGKILL");
      throw this.startError(handshake.error);
    }

    const client = connectClient(socket);
    let version: { version: string; driver: string; localRoot: string };
    try {
      version = await new Promise((resolve, reject) => {
        client.Version(
          {},
          { deadline: Date.now() + startTimeout },
          (error: Error | null, reply: { version: string; driver: string; localRoot: string }) =>
            error ? reject(error) : resolve(reply),
        );
      });
    } catch (error) {
      client.close();
      throw failed(`did not answer Version: ${(error as Error).message}`);
    }
    const wrong = incompatibility(version.version);
    if (wrong !== undefined) {
      client.close();
      throw failed(`cannot be used: ${wrong}`);
    }

    const generation: Generation = {
      child,
      client,
      startedAt: Date.now(),
      localRoot:
        speaksMinor(version.version, 2) && version.localRoot !== "" ? version.localRoot : undefined,
      callStream: speaksMinor(version.version, CALL_STREAM_MINOR),
      touch: speaksMinor(version.version, TOUCH_MINOR),
      callBatches: speaksMinor(version.version, CALL_BATCH_MINOR),
      commitTo: speaksMinor(version.version, COMMIT_TO_MINOR),
      commitToIfAbsent: speaksMinor(version.version, IF_ABSENT_MINOR),
      exited,
    };
    void exited.then(() => {
      generation.exit = exit;
      client.close();
      if (this.closed) return;
      this.log("error", `the driver process (pid ${child.pid}) ${exit}`);
      // A process that ran a while restarts quickly; one that keeps dying, ever more slowly.
      if (Date.now() - generation.startedAt > 30_000) {
        this.restartDelay = this.options.restartDelayMs ?? 100;
      }
      if (this.starting === undefined) this.scheduleRestart().catch(() => {});
    });
    if (this.closed) child.kill("SIGTERM");
    this.current = generation;
    this.log("info", `serving ${version.driver} (protocol ${version.version}, pid ${child.pid})`);
    return generation;
  }

  /** The handshake line, or how the wait for it ended. */
  private handshake(
    child: ChildProcess,
    exited: Promise<void>,
    timeoutMs: number,
  ): Promise<Handshake | "timeout" | "exited"> {
    return new Promise((resolve) => {
      const lines = createInterface({ input: child.stdout! });
      let settled = false;
      const settle = (result: Handshake | "timeout" | "exited") => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        resolve(result);
      };
      const timeout = setTimeout(() => settle("timeout"), timeoutMs);
      lines.on("line", (line) => {
        if (!settled) {
          try {
            const parsed = JSON.parse(line) as Handshake;
            if (parsed.ready === true || parsed.error !== undefined) return settle(parsed);
          } catch {
            // Not the handshake: an ordinary line of output.
          }
        }
        this.log("info", line);
      });
      void exited.then(() => settle("exited"));
    });
  }

  /** The error a driver reported instead of starting, as the contract's error. */
  private startError(error: NonNullable<Handshake["error"]>): StorageDriverError {
    const message = error.message ?? "failed to start";
    if (error.code === DriverErrorCode.InvalidParameter && error.parameter !== undefined) {
      const prefix = `parameter ${error.parameter}: `;
      const bare = message.includes(prefix)
        ? message.slice(message.indexOf(prefix) + prefix.length)
        : message;
      return new InvalidParameterError(this.name, error.parameter, bare);
    }
    return new InvalidStorageDriverError(
      this.name,
      `driver executable ${this.executable} failed to start: ${message}`,
    );
  }
}
