// The metrics layer's public surface: a registry of Prometheus metrics per running registry, with
// lookup by name for any layer that counts something (GC runs, proxy hits), and the instruments of
// the HTTP server, the storage driver and the storage layer's caches. See docs/metrics.md.

export {
  Counter,
  Gauge,
  Histogram,
  MetricsRegistry,
  defaultBuckets,
  durationBuckets,
  sizeBuckets,
  type CounterOptions,
  type GaugeOptions,
  type HistogramOptions,
  type MetricOptions,
} from "./registry.js";
export { HttpMetrics, type RequestObservation } from "./http.js";
export { observeDriver } from "./driver.js";
export { observeStorage } from "./storage.js";
