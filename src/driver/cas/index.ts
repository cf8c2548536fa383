// The CAS driver (seed 002): registry paths served from a local content-addressable store and a
// Transferer. Parameters: `rootdirectory` (required: the CAS and the scratch area live below it),
// `constructor` (`ro`, the default, or `rw`, as Kraken's read-only and read-write constructors),
// `capacity` (bytes the CAS may hold, least recently used out first; 0, the default, is
// unbounded) and `transferer` (a Transferer object, or the name a program registered one under
// with registerTransferer, as `berth agent` does: config passes through a deep copy, which keeps
// names but not objects).

import { join, resolve } from "node:path";
import { InvalidParameterError, type DriverParameters, type DriverUse } from "../driver.js";
import { registerDriver } from "../factory.js";
import { createFilesystemDriver } from "../filesystem/index.js";
import { ParameterReader } from "../parameters.js";
import { CAStore } from "./castore.js";
import { CAS_DRIVER_NAME, CasDriver } from "./driver.js";
import { scratchArea } from "./scratch.js";
import type { Transferer } from "./transferer.js";

export { CAStore, DigestMismatchError, type CAStoreOptions } from "./castore.js";
export { CAS_DRIVER_NAME, CasDriver, type CasDriverOptions } from "./driver.js";
export { parseLayoutPath, type LayoutPath } from "./layout.js";
export {
  TransferNotFoundError,
  type TransferHint,
  type TransferStat,
  type Transferer,
} from "./transferer.js";

const TRANSFERER_METHODS = ["download", "upload", "getTag", "putTag", "stat"] as const;

const namedTransferers = new Map<string, Transferer>();

/** Makes `transferer` the one a CAS driver gets by `transferer: <name>`; returns an unregister function. */
export function registerTransferer(name: string, transferer: Transferer): () => void {
  if (namedTransferers.has(name))
    throw new Error(`a transferer named ${name} is already registered`);
  namedTransferers.set(name, transferer);
  return () => {
    if (namedTransferers.get(name) === transferer) namedTransferers.delete(name);
  };
}

function isTransferer(value: unknown): value is Transferer {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return TRANSFERER_METHODS.every((method) => typeof candidate[method] === "function");
}

/** Creates a CAS driver from its parameters (see the top of this file). */
export async function createCasDriver(
  parameters: DriverParameters,
  use: DriverUse = {},
): Promise<CasDriver> {
  // `constructor` is on every object's prototype: read it only when it is the caller's own key.
  const own = Object.hasOwn(parameters, "constructor") ? parameters.constructor : undefined;
  const reader = new ParameterReader(CAS_DRIVER_NAME, { ...parameters, constructor: own });
  const root = resolve(reader.requiredString("rootdirectory"));
  const constructor = reader.oneOf("constructor", ["ro", "rw"] as const, "ro");
  const capacity = reader.integer("capacity", 0);
  const given = parameters.transferer;
  const transferer = typeof given === "string" ? namedTransferers.get(given) : given;
  if (!isTransferer(transferer)) {
    throw new InvalidParameterError(
      CAS_DRIVER_NAME,
      "transferer",
      `${JSON.stringify(typeof given === "string" ? given : typeof given)}: must be a registered transferer's name or an object with ${TRANSFERER_METHODS.join(", ")} (given by the program creating the driver, such as berth agent)`,
    );
  }
  const filesystem = await createFilesystemDriver({ rootdirectory: join(root, "local") }, use);
  const local = scratchArea(filesystem, CAS_DRIVER_NAME);
  const cas = await CAStore.open(join(root, "cas"), { capacity });
  return new CasDriver({
    cas,
    local,
    transferer,
    readWrite: constructor === "rw" && !use.readOnly,
  });
}

registerDriver(CAS_DRIVER_NAME, createCasDriver, {
  known: ["rootdirectory", "constructor", "capacity", "transferer"],
});
