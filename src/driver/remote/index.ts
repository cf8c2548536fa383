// Out-of-process storage drivers (seed 000): a driver in any language runs as its own process,
// `registry-storage-<name>`, and serves the driver contract over gRPC on a Unix socket (the
// service is proto/berth-driver.proto; docs/driver-protocol.md describes the whole protocol). The
// factory falls back to this for a name no built-in driver has; `serveDriver` and
// `serveDriverProcess` are the server side, for drivers written in TypeScript.

import {
  DriverErrorCode,
  InvalidStorageDriverError,
  type DriverFactory,
  type DriverParameters,
} from "../driver.js";
import { RemoteDriver } from "./client.js";
import { DriverProcess, type DriverProcessOptions } from "./process.js";
import { SOCKET_ENV } from "./protocol.js";
import { serveDriver, type ServeDriverOptions } from "./server.js";

export { driverExecutableName, findDriverExecutable } from "../executable.js";
export { RemoteDriver } from "./client.js";
export { DriverProcess, type DriverLog, type DriverProcessOptions } from "./process.js";
export { PROTOCOL_VERSION, PROTO_FILE, SOCKET_ENV, incompatibility } from "./protocol.js";
export { serveDriver, type DriverServer, type ServeDriverOptions } from "./server.js";

/** Options of a driver proxied to a process. */
export interface RemoteDriverOptions extends DriverProcessOptions {
  /** Deadline of each call (and of each step of a stream), in milliseconds. Default 120 s. */
  callTimeoutMs?: number;
  /**
   * Send the small unary calls on the call stream of a driver that serves one (protocol 1.3).
   * Default true; false sends every call as its own rpc, as to a 1.2 driver (for comparisons).
   */
  callStream?: boolean;
}

/**
 * Starts `executable` as the driver `name` with `parameters` and returns a driver proxying every
 * call to it; `close()` stops the process. Rejects with the driver's own error when it refuses its
 * parameters, or an InvalidStorageDriverError naming the executable when it cannot start or speaks
 * an incompatible protocol version.
 */
export async function createRemoteDriver(
  name: string,
  executable: string,
  parameters: DriverParameters,
  options: RemoteDriverOptions = {},
): Promise<RemoteDriver> {
  const process = new DriverProcess(name, executable, parameters, options);
  await process.start();
  return new RemoteDriver(
    name,
    process,
    options.callTimeoutMs ?? 120_000,
    options.callStream ?? true,
  );
}

/** The handshake line a driver process prints when it cannot start. */
function errorLine(error: unknown): string {
  const fields = error as { code?: unknown; parameter?: unknown; message?: unknown };
  return JSON.stringify({
    error: {
      code: typeof fields.code === "string" ? fields.code : DriverErrorCode.Backend,
      message: typeof fields.message === "string" ? fields.message : String(error),
      ...(typeof fields.parameter === "string" ? { parameter: fields.parameter } : {}),
    },
  });
}

/**
 * The main of a driver process written in TypeScript: creates the driver with `create` from the
 * JSON parameters (the process's first argument), serves it on the socket named by
 * BERTH_DRIVER_SOCKET, prints the handshake line, and exits when Berth closes its stdin or sends
 * SIGTERM. A driver that cannot be created prints why (as the handshake) and exits 1.
 */
export async function serveDriverProcess(
  create: DriverFactory,
  parametersJson: string | undefined,
  options: Omit<ServeDriverOptions, "socket"> = {},
): Promise<void> {
  const socket = process.env[SOCKET_ENV];
  if (socket === undefined || socket === "") {
    throw new InvalidStorageDriverError(
      "driver-server",
      `${SOCKET_ENV} is not set: a driver process is started by Berth, which names the socket to serve on`,
    );
  }
  let driver;
  try {
    const parameters: unknown = JSON.parse(parametersJson ?? "{}");
    if (typeof parameters !== "object" || parameters === null || Array.isArray(parameters)) {
      throw new Error(`the parameters must be a JSON object, got ${parametersJson}`);
    }
    driver = await create(parameters as DriverParameters, {});
  } catch (error) {
    process.stdout.write(`${errorLine(error)}\n`);
    process.exitCode = 1;
    return;
  }
  const server = await serveDriver(driver, { ...options, socket });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void server
      .close()
      .then(() => driver.close?.())
      .finally(() => process.exit(0));
  };
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
}
