// The driver factory: drivers register under a name when their module loads; config names one and
// hands it a plain parameters object. Every driver created here is wrapped in DriverBase.

import { InvalidStorageDriverError, type DriverFactory, type DriverParameters } from "./driver.js";
import { DriverBase } from "./base.js";

const factories = new Map<string, DriverFactory>();

/** Registers `factory` under `name`. A name can be registered once; a second time throws. */
export function registerDriver(name: string, factory: DriverFactory): void {
  if (typeof factory !== "function") {
    throw new InvalidStorageDriverError(
      name,
      `driver ${JSON.stringify(name)}: factory is not a function`,
    );
  }
  if (factories.has(name)) {
    throw new InvalidStorageDriverError(
      name,
      `driver ${JSON.stringify(name)} is already registered`,
    );
  }
  factories.set(name, factory);
}

/** The names of the registered drivers, sorted. */
export function registeredDrivers(): string[] {
  return [...factories.keys()].sort();
}

/**
 * Creates the driver registered as `name` from `parameters`, wrapped in the base wrapper (path
 * checks and metrics). An unknown name throws InvalidStorageDriverError naming the known drivers;
 * bad parameters reject with the driver's own error naming the parameter.
 */
export async function createDriver(
  name: string,
  parameters: DriverParameters = {},
): Promise<DriverBase> {
  const factory = factories.get(name);
  if (factory === undefined) {
    const known = registeredDrivers().join(", ") || "none";
    throw new InvalidStorageDriverError(
      name,
      `no storage driver named ${JSON.stringify(name)} (registered: ${known})`,
    );
  }
  const driver = await factory(parameters ?? {});
  return driver instanceof DriverBase ? driver : new DriverBase(driver);
}
