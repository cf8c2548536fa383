// Berth's main export: a registry to start in-process (startRegistry), its config, and the public
// APIs of the layers below it, for embedding Berth or writing a storage driver for it.

export {
  startRegistry,
  openStorage,
  type ConfigRegistryOptions,
  type DriverRegistryOptions,
  type RunningRegistry,
  type RegistryOptionsBase,
  type StartRegistryOptions,
} from "./server/index.js";
export {
  ConfigError,
  loadConfig,
  parseConfig,
  resolveConfig,
  type BerthConfig,
  type ConfigProblem,
  type Environment,
  type HttpConfig,
  type LogLevel,
  type StorageConfig,
  type TlsConfig,
} from "./config/index.js";
export * from "./driver/index.js";
export * from "./storage/index.js";
export { createApiHandler, type ApiHandlerOptions } from "./api/index.js";
