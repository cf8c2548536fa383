// The s3 driver's entry: registers "s3" (and "s3aws", distribution 2.x's other name for it) with the
// factory. The driver and the AWS SDK (some 400 ms to load; an optional peer dependency) load when
// an s3 driver is created, so importing the driver layer stays cheap for processes that use
// another backend, and a registry that does not use s3 need not install the SDK. See ./driver.ts
// for the implementation and docs/driver-s3.md for its use.

import type { DriverParameters, DriverUse } from "../driver.js";
import { registerDriver } from "../factory.js";
import { loadDriverModule } from "../sdk.js";
import type { S3Driver } from "./driver.js";
import { DRIVER_NAME, readS3Parameters } from "./parameters.js";

export { readS3Parameters, type S3Parameters } from "./parameters.js";
export type { S3Driver } from "./driver.js";

/** The npm packages the s3 driver needs (optional peer dependencies of Berth). */
export const S3_PACKAGES = ["@aws-sdk/client-s3", "@aws-sdk/s3-request-presigner"] as const;

/**
 * Creates an s3 driver from distribution's parameters (see docs/driver-s3.md). They are checked
 * before the SDK loads: a bad one rejects with an InvalidParameterError naming it; without the
 * SDK it rejects with an InvalidStorageDriverError naming the packages to install. `load` imports
 * the driver's module (replaceable for tests).
 */
export async function createS3Driver(
  parameters: DriverParameters,
  load: () => Promise<typeof import("./driver.js")> = () => import("./driver.js"),
  use: DriverUse = {},
): Promise<S3Driver> {
  const checked = readS3Parameters(parameters);
  const { S3Driver } = await loadDriverModule(DRIVER_NAME, S3_PACKAGES, load);
  const driver = new S3Driver(checked);
  // A garbage collection needs the bucket to be there (`use.mustExist`): else it names it.
  if (use.mustExist) await driver.requireBucket();
  return driver;
}

/** The parameters ./parameters.ts reads, and those of distribution's s3 driver it does not. */
const s3Parameters = {
  known: [
    "bucket",
    "region",
    "regionendpoint",
    "forcepathstyle",
    "secure",
    "skipverify",
    "v4auth",
    "accesskey",
    "secretkey",
    "sessiontoken",
    "rootdirectory",
    "encrypt",
    "keyid",
    "storageclass",
    "objectacl",
    "useragent",
    "chunksize",
    "multipartcopychunksize",
    "multipartcopymaxconcurrency",
    "multipartcopythresholdsize",
  ],
  unsupported: ["usedualstack", "accelerate", "loglevel", "redirectendpoint"],
};
registerDriver(
  DRIVER_NAME,
  (parameters, use) => createS3Driver(parameters, undefined, use),
  s3Parameters,
);
registerDriver(
  "s3aws",
  (parameters, use) => createS3Driver(parameters, undefined, use),
  s3Parameters,
);
