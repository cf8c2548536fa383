// Test support: drivers served on Unix sockets in a scratch directory of their own, with raw
// protocol clients of them; the servers, clients and directory go once the file's tests ended.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import type { StorageDriver } from "../driver/driver.js";
import {
  connectClient,
  type DriverConnection,
  type ServiceClient,
} from "../driver/remote/client.js";
import { serveDriver, type DriverServer, type ServeDriverOptions } from "../driver/remote/index.js";

export interface DriverSockets {
  /** The scratch directory (set once the file's tests started). */
  readonly scratch: string;
  /** Serves `driver` on `<scratch>/<name>.sock` and returns a client of it. */
  serve(
    name: string,
    driver: StorageDriver,
    options?: Omit<ServeDriverOptions, "socket">,
  ): Promise<ServiceClient>;
}

/** A connection that always gives `client` (no process to restart), with `extra` fields. */
export function fixedConnection(
  client: ServiceClient,
  extra: Partial<DriverConnection> = {},
): DriverConnection {
  return {
    client: async () => client,
    explain: async (failure) => failure.details,
    close: async () => undefined,
    pid: undefined,
    restartCount: 0,
    ...extra,
  };
}

/** Registers the before/after hooks of a test file serving drivers; `prefix` names its scratch. */
export function driverSockets(prefix: string): DriverSockets {
  let scratch = "";
  const servers: DriverServer[] = [];
  const clients: ServiceClient[] = [];
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((server) => server.close()));
    await rm(scratch, { recursive: true, force: true });
  });
  return {
    get scratch() {
      return scratch;
    },
    async serve(name, driver, options = {}) {
      const socket = join(scratch, `${name}.sock`);
      servers.push(await serveDriver(driver, { ...options, socket }));
      const client = connectClient(socket);
      clients.push(client);
      return client;
    },
  };
}
