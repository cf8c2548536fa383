// The azure driver's entry: registers "azure" with the factory. The driver itself and the Azure
// SDK (optional peer dependencies) load when an azure driver is created, so importing the driver
// layer stays cheap for processes that use another backend, and they need not install the SDK. See ./driver.ts for the implementation and docs/driver-azure.md for its use.

import type { DriverParameters, DriverUse, StorageDriver } from "../driver.js";
import { registerDriver } from "../factory.js";
import { loadDriverModule } from "../sdk.js";
import { DRIVER_NAME, parseAzureParameters } from "./parameters.js";

export { parseAzureParameters, type AzureDriverOptions } from "./parameters.js";
export type { AzureDriver } from "./driver.js";

/** The npm package the azure driver needs, and the one it needs without `accountkey`. */
export const AZURE_PACKAGES = ["@azure/storage-blob"] as const;
export const AZURE_IDENTITY_PACKAGES = ["@azure/identity"] as const;

/**
 * Creates an azure driver from its parameters (see `parseAzureParameters`); without `accountkey`
 * it authenticates with @azure/identity's DefaultAzureCredential. Without the SDK it rejects with
 * an InvalidStorageDriverError naming the packages to install. `load` imports the driver's module
 * (replaceable for tests).
 */
export async function createAzureDriver(
  parameters: DriverParameters,
  load: () => Promise<typeof import("./driver.js")> = () => import("./driver.js"),
  use: DriverUse = {},
): Promise<StorageDriver> {
  const options = parseAzureParameters(parameters);
  const { AzureDriver } = await loadDriverModule(DRIVER_NAME, AZURE_PACKAGES, load);
  let driver: InstanceType<typeof AzureDriver>;
  if (options.accountKey !== undefined) {
    driver = new AzureDriver(options);
  } else {
    const { DefaultAzureCredential } = await loadDriverModule(
      DRIVER_NAME,
      AZURE_IDENTITY_PACKAGES,
      () => import("@azure/identity"),
    );
    driver = new AzureDriver(options, new DefaultAzureCredential());
  }
  // A garbage collection needs the container to be there (`use.mustExist`): else it names it.
  if (use.mustExist) await driver.requireContainer();
  return driver;
}

registerDriver(DRIVER_NAME, (parameters, use) => createAzureDriver(parameters, undefined, use), {
  known: [
    "accountname",
    "accountkey",
    "container",
    "realm",
    "serviceurl",
    "rootdirectory",
    "chunksize",
  ],
  unsupported: [
    "credentials",
    "connectionstring",
    "skipverify",
    "maxretries",
    "retrytrydelay",
    "copystatuspollmaxretry",
    "copystatuspolldelay",
  ],
});
