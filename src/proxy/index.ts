// The pull-through cache's public surface: a RegistryStorage that serves the repositories under
// each upstream's prefix from that upstream through local storage (see registry.ts).

export { ProxyRegistry, withProxy, type ProxyOptions, type UpstreamStats } from "./registry.js";
export { CacheExpiry, type ExpiryLog } from "./expiry.js";
export { observeProxy } from "./metrics.js";
export { proxyLogging, startProxy } from "./jobs.js";
export { UpstreamError, parseChallenge, retryAfterMs } from "./upstream.js";
