// The s3 driver's entry: registers "s3" (and "s3aws", distribution 2.x's other name for it) with the
// factory. The driver and the AWS SDK (some 400 ms to load) load when an s3 driver is created, so
// importing the driver layer stays cheap for processes that use another backend. See ./driver.ts
// for the implementation and docs/driver-s3.md for its use.

import type { DriverParameters } from "../driver.js";
import { registerDriver } from "../factory.js";
import type { S3Driver } from "./driver.js";
import { DRIVER_NAME, readS3Parameters } from "./parameters.js";

export { readS3Parameters, type S3Parameters } from "./parameters.js";
export type { S3Driver } from "./driver.js";

/**
 * Creates an s3 driver from distribution's parameters (see docs/driver-s3.md). They are checked
 * before the SDK loads: a bad one rejects with an InvalidParameterError naming it.
 */
export async function createS3Driver(parameters: DriverParameters): Promise<S3Driver> {
  const checked = readS3Parameters(parameters);
  const { S3Driver } = await import("./driver.js");
  return new S3Driver(checked);
}

registerDriver(DRIVER_NAME, createS3Driver);
registerDriver("s3aws", createS3Driver);
