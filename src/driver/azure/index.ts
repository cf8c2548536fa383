// The azure driver's entry: registers "azure" with the factory. The driver itself and the Azure
// SDK load on first use, so importing the driver layer stays cheap for processes that use another
// backend. See ./driver.ts for the implementation and docs/driver-azure.md for its use.

import type { DriverParameters, StorageDriver } from "../driver.js";
import { registerDriver } from "../factory.js";
import { DRIVER_NAME, parseAzureParameters } from "./parameters.js";

export { parseAzureParameters, type AzureDriverOptions } from "./parameters.js";
export type { AzureDriver } from "./driver.js";

/**
 * Creates an azure driver from its parameters (see `parseAzureParameters`); without `accountkey`
 * it authenticates with @azure/identity's DefaultAzureCredential.
 */
export async function createAzureDriver(parameters: DriverParameters): Promise<StorageDriver> {
  const options = parseAzureParameters(parameters);
  const { AzureDriver } = await import("./driver.js");
  if (options.accountKey !== undefined) return new AzureDriver(options);
  const { DefaultAzureCredential } = await import("@azure/identity");
  return new AzureDriver(options, new DefaultAzureCredential());
}

registerDriver(DRIVER_NAME, createAzureDriver);
