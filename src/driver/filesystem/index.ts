// The filesystem driver: storage paths map to files below a root directory (see driver.ts). This
// module creates it from its parameters and registers it with the factory.

import { constants } from "node:fs";
import { access, realpath } from "node:fs/promises";
import { resolve } from "node:path";
import {
  InvalidParameterError,
  PathNotFoundError,
  type DriverParameters,
  type DriverUse,
} from "../driver.js";
import { registerDriver } from "../factory.js";
import { ParameterReader } from "../parameters.js";
import { FilesystemDriver } from "./driver.js";
import { NAME, mkdir, stat } from "./fs.js";

export { FilesystemDriver };
export { READ_NOFOLLOW } from "./fs.js";

/**
 * Creates a filesystem driver from its parameters: `rootdirectory` (required; a relative path is
 * taken from the working directory) is created if missing, unless `use.mustExist` (a garbage
 * collection, which then fails with a PathNotFoundError naming it and creates nothing). A value
 * that is not a usable directory is an InvalidParameterError now rather than a failure at the first
 * request; a read-only registry (`use.readOnly`) needs it readable only, as distribution serves it.
 */
export async function createFilesystemDriver(
  parameters: DriverParameters,
  use: DriverUse = {},
): Promise<FilesystemDriver> {
  const configured = new ParameterReader(NAME, parameters).requiredString("rootdirectory");
  const root = resolve(configured);
  const invalid = (reason: string) =>
    new InvalidParameterError(NAME, "rootdirectory", `${JSON.stringify(configured)} ${reason}`);
  if (use.mustExist) {
    const found = await stat(root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") throw new PathNotFoundError(NAME, root);
      throw error;
    });
    if (!found.isDirectory()) throw invalid("is not a directory");
  } else {
    try {
      await mkdir(root, { recursive: true });
    } catch (error) {
      throw invalid(`cannot be created: ${(error as Error).message}`);
    }
    if (!(await stat(root)).isDirectory()) throw invalid("is not a directory");
  }
  try {
    await access(root, constants.R_OK | constants.X_OK);
  } catch {
    throw invalid("is not readable");
  }
  if (!use.readOnly) {
    try {
      await access(root, constants.W_OK);
    } catch {
      throw invalid(
        "is not writable (a read-only root is served with storage.maintenance.readonly.enabled)",
      );
    }
  }
  const driver = new FilesystemDriver(await realpath(root));
  // In the background: start-up does not wait for a walk of the whole tree. Not on a read-only root.
  if (!use.readOnly) void driver.startSweep();
  return driver;
}

registerDriver(NAME, createFilesystemDriver, {
  known: ["rootdirectory"],
  unsupported: ["maxthreads"],
});
