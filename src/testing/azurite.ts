// Test support: Azurite, Microsoft's Azure Storage emulator from npm, as a real Blob service for
// the azure driver's tests. One blob service per test file, on a free loopback port, keeping its
// data in memory; it runs in a child process so that its work does not share the tests' event loop.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";

/** Azurite's built-in development account and its published key (not a secret). */
export const AZURITE_ACCOUNT_NAME = "devstoreaccount1";
export const AZURITE_ACCOUNT_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** A running Azurite blob service. */
export interface Azurite {
  /** The account's blob service URL, such as `http://127.0.0.1:41234/devstoreaccount1`. */
  readonly serviceUrl: string;
  readonly accountName: string;
  readonly accountKey: string;
  /** Creates a container (private access) and resolves once it exists. */
  createContainer(name: string): Promise<void>;
  /** Stops the service and removes its temp directory; nothing is left running or on disk. */
  stop(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 30_000;

/**
 * Azurite's blob entry point is run through a small wrapper that exits when its stdin closes, so
 * the service dies with the test process even if that is killed before `stop()` runs.
 */
function wrapperSource(main: string): string {
  return [
    `process.stdin.on("end", () => process.exit(0)).resume();`,
    `process.argv = [process.argv[0], ${JSON.stringify(main)}, ...process.argv.slice(1)];`,
    `require(${JSON.stringify(main)});`,
  ].join("\n");
}

/** Resolves with the port from Azurite's "successfully listens" line, or rejects if it exits. */
function waitForPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(
      () => fail(new Error("Azurite did not start in time")),
      STARTUP_TIMEOUT_MS,
    );
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /successfully listens on https?:\/\/[^:\s]+:(\d+)/.exec(output);
      if (match) done(() => resolve(Number(match[1])));
    };
    const onExit = (code: number | null) =>
      fail(new Error(`Azurite exited (code ${code}) before listening: ${output.trim()}`));
    const fail = (error: Error) => done(() => reject(error));
    const done = (settle: () => void) => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      settle();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
}

/**
 * Kills the service outright: its data lives only in its memory and is thrown away anyway, and a
 * graceful stop waits for idle keep-alive connections to time out (seconds).
 */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

/** Starts Azurite's blob service on 127.0.0.1 with an OS-chosen port and in-memory storage. */
export async function startAzurite(): Promise<Azurite> {
  const main = createRequire(import.meta.url).resolve("azurite/dist/src/blob/main.js");
  // In-memory persistence refuses --location; the temp directory is the working directory instead,
  // so anything Azurite might write lands there and is removed by stop().
  const workDir = await mkdtemp(join(tmpdir(), "berth-azurite-"));
  const args = [
    "--blobHost=127.0.0.1",
    "--blobPort=0",
    "--inMemoryPersistence",
    "--disableTelemetry",
    "--skipApiVersionCheck",
    "--loose",
    "--silent",
  ];
  const child = spawn(process.execPath, ["-e", wrapperSource(main), "--", ...args], {
    cwd: workDir,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let port: number;
  try {
    port = await waitForPort(child);
  } catch (error) {
    await stopChild(child);
    await rm(workDir, { recursive: true, force: true });
    throw error;
  }
  // Drain output from here on so a chatty service can never block on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();

  const serviceUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT_NAME}`;
  const service = new BlobServiceClient(
    serviceUrl,
    new StorageSharedKeyCredential(AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY),
  );
  let stopped: Promise<void> | undefined;
  return {
    serviceUrl,
    accountName: AZURITE_ACCOUNT_NAME,
    accountKey: AZURITE_ACCOUNT_KEY,
    async createContainer(name: string) {
      await service.getContainerClient(name).create();
    },
    stop() {
      stopped ??= (async () => {
        await stopChild(child);
        await rm(workDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
