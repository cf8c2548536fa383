// The driver layer's public surface: the contract, its errors, the factory and base wrapper, and
// the built-in drivers, each of which registers itself when imported here.

export * from "./driver.js";
export {
  DriverBase,
  type CallOutcome,
  type DriverCallObserver,
  type DriverCallTracer,
  type DriverMetrics,
  type MethodMetrics,
} from "./base.js";
export { copyContent } from "./copy.js";
export { dropSpareBuffers } from "./spares.js";
export { isStorageFull } from "./full.js";
export {
  registerDriver,
  createDriver,
  createBuiltinDriver,
  registeredDrivers,
  driverParameterNames,
} from "./factory.js";
export { driverExecutableName, findDriverExecutableAtStart } from "./executable.js";
export { isValidPath, isValidPathOrRoot } from "./paths.js";
export { ParameterReader, ValueReader } from "./parameters.js";
export { walkByListing, walkFlatListing } from "./walk.js";

export { InMemoryDriver } from "./inmemory/index.js";
export {
  createAzureDriver,
  parseAzureParameters,
  type AzureDriver,
  type AzureDriverOptions,
} from "./azure/index.js";
export { createS3Driver, readS3Parameters, type S3Driver, type S3Parameters } from "./s3/index.js";
export { FilesystemDriver, createFilesystemDriver } from "./filesystem/index.js";
export {
  createRadosDriver,
  readRadosParameters,
  type RadosDriver,
  type RadosParameters,
} from "./rados/index.js";
export {
  createCasDriver,
  registerTransferer,
  CasDriver,
  CAStore,
  TransferNotFoundError,
  parseLayoutPath,
  type Transferer,
  type TransferHint,
  type TransferStat,
} from "./cas/index.js";
