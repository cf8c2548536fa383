// A driver in another language: examples/python-driver (Python, grpcio) passes the shared suite
// through the factory's fallback, started as `registry-storage-pydir` from a directory on PATH.
// Needs Debian's python3-grpcio and python3-grpc-tools (skipped without them outside CI).

import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe } from "node:test";
import { createDriver, type StorageDriver } from "../index.js";
import { runDriverSuite } from "../testsuite/index.js";

const DRIVER = fileURLToPath(
  new URL("../../../../examples/python-driver/driver.py", import.meta.url),
);

/** Debian's python3 (whose packages have grpc), else whichever python3 is on PATH. */
const PYTHONS = ["/usr/bin/python3", "python3"];
const python = PYTHONS.find(
  (candidate) =>
    spawnSync(candidate, ["-c", "import grpc, grpc_tools"], { stdio: "ignore" }).status === 0,
);

function skipReason(): false | string {
  if (process.env.CI === "true" || python !== undefined) return false;
  return "needs python3 with grpc: apt-get install python3-grpcio python3-grpc-tools";
}

const scratch = mkdtempSync(join(tmpdir(), "berth-pydriver-"));
const bin = join(scratch, "bin");
mkdirSync(bin);
writeFileSync(
  join(bin, "registry-storage-pydir"),
  `#!/bin/sh\nexec ${python ?? "python3"} ${JSON.stringify(DRIVER)} "$1"\n`,
);
chmodSync(join(bin, "registry-storage-pydir"), 0o755);
process.env.PATH = `${bin}:${process.env.PATH ?? ""}`;

let driver: StorageDriver | undefined;
after(async () => {
  await driver?.close?.();
  rmSync(scratch, { recursive: true, force: true });
});

describe("a driver written in Python", { skip: skipReason() }, () => {
  runDriverSuite(
    "python directory driver out of process (registry-storage-pydir)",
    async () => {
      driver = await createDriver("pydir", { rootdirectory: join(scratch, "root") });
      return driver;
    },
    { modTimeResolutionMs: 20 },
  );
});
