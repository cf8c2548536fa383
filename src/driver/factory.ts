// The driver factory: drivers register under a name when their module loads; config names one and
// hands it a plain parameters object. Every driver created here is wrapped in DriverBase.

import {
  InvalidStorageDriverError,
  type DriverFactory,
  type DriverParameterNames,
  type DriverParameters,
  type DriverUse,
} from "./driver.js";
import { DriverBase } from "./base.js";

const factories = new Map<string, DriverFactory>();
const parameterNames = new Map<string, DriverParameterNames>();

/**
 * Registers `factory` under `name`, with the names of the parameters it reads when given (config
 * then warns about the others). A name can be registered once; a second time throws.
 */
export function registerDriver(
  name: string,
  factory: DriverFactory,
  parameters?: DriverParameterNames,
): void {
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
  if (parameters !== undefined) parameterNames.set(name, parameters);
}

/** The parameter names the driver registered as `name` declared, if it declared them. */
export function driverParameterNames(name: string): DriverParameterNames | undefined {
  return parameterNames.get(name);
}

/** The names of the registered drivers, sorted. */
export function registeredDrivers(): string[] {
  return [...factories.keys()].sort();
}

/**
 * Creates the driver registered as `name` from `parameters`, wrapped in the base wrapper (path
 * checks and metrics). An unknown name throws InvalidStorageDriverError naming the known drivers;
 * bad parameters reject with the driver's own error naming the parameter. `use` says how the
 * registry will use it (read-only, or storage that must exist).
 */
export async function createDriver(
  name: string,
  parameters: DriverParameters = {},
  use: DriverUse = {},
): Promise<DriverBase> {
  const factory = factories.get(name);
  if (factory === undefined) {
    const known = registeredDrivers().join(", ") || "none";
    throw new InvalidStorageDriverError(
      name,
      `no storage driver named ${JSON.stringify(name)} (registered: ${known})`,
    );
  }
  const driver = await factory(parameters ?? {}, use);
  return driver instanceof DriverBase ? driver : new DriverBase(driver);
}
