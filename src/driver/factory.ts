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
import { driverExecutableName, findDriverExecutable } from "./executable.js";

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
 * checks and metrics). A name no driver is registered under is looked up as an out-of-process
 * driver, `registry-storage-<name>` on PATH (seed 000; see ./remote): started with the parameters,
 * it is proxied. Neither gives an InvalidStorageDriverError naming the known drivers and the
 * executable looked for; bad parameters reject with the driver's own error naming the parameter.
 * `use` says how the registry will use it (read-only, or storage that must exist); an
 * out-of-process driver is not told (the protocol has no field for it yet).
 */
export async function createDriver(
  name: string,
  parameters: DriverParameters = {},
  use: DriverUse = {},
): Promise<DriverBase> {
  const factory = factories.get(name);
  if (factory === undefined) return createOutOfProcess(name, parameters ?? {});
  const driver = await factory(parameters ?? {}, use);
  return driver instanceof DriverBase ? driver : new DriverBase(driver);
}

/** Creates only a driver registered in this process (never starts a process). */
export async function createBuiltinDriver(
  name: string,
  parameters: DriverParameters = {},
  use: DriverUse = {},
): Promise<DriverBase> {
  if (!factories.has(name)) throw unknownDriver(name);
  return createDriver(name, parameters, use);
}

function unknownDriver(name: string, executable?: string): InvalidStorageDriverError {
  const known = registeredDrivers().join(", ") || "none";
  const lookedFor = executable === undefined ? "" : ` and no executable ${executable} on PATH`;
  return new InvalidStorageDriverError(
    name,
    `no storage driver named ${JSON.stringify(name)} (registered: ${known})${lookedFor}`,
  );
}

async function createOutOfProcess(name: string, parameters: DriverParameters): Promise<DriverBase> {
  // Loaded on demand: gRPC costs nothing to a registry with a built-in driver.
  const executable = await findDriverExecutable(name);
  if (executable === undefined) throw unknownDriver(name, driverExecutableName(name));
  const remote = await import("./remote/index.js");
  return new DriverBase(await remote.createRemoteDriver(name, executable, parameters));
}
