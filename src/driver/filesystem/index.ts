// The filesystem driver: storage paths map to files below a root directory (see driver.ts). This
// module creates it from its parameters and registers it with the factory.

import { constants } from "node:fs";
import { access, realpath } from "node:fs/promises";
import { resolve } from "node:path";
import { InvalidParameterError, type DriverParameters } from "../driver.js";
import { registerDriver } from "../factory.js";
import { ParameterReader } from "../parameters.js";
import { FilesystemDriver } from "./driver.js";
import { NAME, mkdir, stat } from "./fs.js";

export { FilesystemDriver };

/**
 * Creates a filesystem driver from its parameters: `rootdirectory` (required; a relative path is
 * taken from the working directory) is created if missing. A value that is not a usable
 * directory is an InvalidParameterError now rather than a failure at the first request.
 */
export async function createFilesystemDriver(
  parameters: DriverParameters,
): Promise<FilesystemDriver> {
  const configured = new ParameterReader(NAME, parameters).requiredString("rootdirectory");
  const root = resolve(configured);
  const invalid = (reason: string) =>
    new InvalidParameterError(NAME, "rootdirectory", `${JSON.stringify(configured)} ${reason}`);
  try {
    await mkdir(root, { recursive: true });
  } catch (error) {
    throw invalid(`cannot be created: ${(error as Error).message}`);
  }
  if (!(await stat(root)).isDirectory()) throw invalid("is not a directory");
  try {
    await access(root, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch {
    throw invalid("is not readable and writable");
  }
  return new FilesystemDriver(await realpath(root));
}

registerDriver(NAME, createFilesystemDriver);
