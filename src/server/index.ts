// The server layer's public surface: a running registry in this process.

export {
  startRegistry,
  openStorage,
  registryConfig,
  type ConfigRegistryOptions,
  type DriverRegistryOptions,
  type RunningRegistry,
  type RegistryOptionsBase,
  type StartRegistryOptions,
} from "./registry.js";
export { createLogger, type LoggerOptions, type OwnedLogger } from "./logger.js";
export {
  collectOnce,
  startGarbageCollector,
  LeaseHeldError,
  GC_LEASE_TTL_MS,
  type GarbageCollector,
  type GarbageCollectorStats,
} from "./garbage-collector.js";
export { retainOnce, type RetentionRun, type RetentionRunOptions } from "./retention.js";
