// The shared driver suite over the out-of-process protocol, exactly as a user would set it up: a
// directory on PATH holding `registry-storage-<name>` scripts that run `berth driver-server`, and
// `createDriver(<name>, parameters)` from the driver layer's index, which falls back to them
// (protocol 1.3: the small calls on the call stream). The inmemory driver is proxied without the
// call stream, each call its own rpc, as to a driver of protocol 1.2 or older.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { DriverBase } from "../base.js";
import { createDriver, type StorageDriver } from "../index.js";
import { createRemoteDriver } from "./index.js";
import { runDriverSuite } from "../testsuite/index.js";
import { driverScripts } from "../../testing/driver-scripts.js";

const scratch = mkdtempSync(join(tmpdir(), "berth-remote-"));
const bin = driverScripts(join(scratch, "bin"), {
  extfs: ["filesystem"],
  extmem: ["inmemory"],
});
process.env.PATH = `${bin}:${process.env.PATH ?? ""}`;

const opened: StorageDriver[] = [];
async function open(name: string, parameters: Record<string, unknown>): Promise<StorageDriver> {
  const driver = await createDriver(name, parameters);
  opened.push(driver);
  return driver;
}

after(async () => {
  await Promise.all(opened.map((driver) => driver.close?.() ?? Promise.resolve()));
  rmSync(scratch, { recursive: true, force: true });
});

runDriverSuite(
  "filesystem out of process (registry-storage-extfs)",
  () => open("extfs", { rootdirectory: join(scratch, "extfs") }),
  { modTimeResolutionMs: 20 },
);

runDriverSuite(
  "inmemory out of process, unary rpcs (registry-storage-extmem)",
  async () => {
    const remote = await createRemoteDriver(
      "extmem",
      join(bin, "registry-storage-extmem"),
      {},
      { callStream: false },
    );
    const driver = new DriverBase(remote);
    opened.push(driver);
    return driver;
  },
  { modTimeResolutionMs: 5 },
);
