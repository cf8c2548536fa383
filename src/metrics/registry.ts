// A registry of Prometheus metrics for one running registry (prom-client underneath). Each Berth
// registry started in a process has its own, so that registries embedded side by side (tests, a
// proxy beside a local registry) do not add up into one another's counters. Metrics are looked up
// by name: the second `counter("x", ...)` returns the first one's counter, so that the layers that
// share a metric need not pass it around, and a name asked for as two different kinds throws.

//
// prom-client (and the OpenTelemetry API it loads) is required on first use, not at start: a
// registry that neither serves metrics nor runs a job that counts never loads it (idle RSS 12 MiB
// lower, docs/performance.md). It is CommonJS, so a synchronous require keeps this API synchronous.

import { createRequire } from "node:module";
import type { Counter, Gauge, Histogram, Registry } from "prom-client";

export type { Counter, Gauge, Histogram } from "prom-client";

let promClient: typeof import("prom-client") | undefined;

/** prom-client, loaded on first use. */
function prom(): typeof import("prom-client") {
  promClient ??= createRequire(import.meta.url)("prom-client") as typeof import("prom-client");
  return promClient;
}

/** What makes a metric: its name (`registry_<subsystem>_<what>[_unit]`), help and label names. */
export interface MetricOptions<L extends string = string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

/** A histogram's options: its buckets' upper bounds. */
export interface HistogramOptions<L extends string = string> extends MetricOptions<L> {
  buckets: readonly number[];
}

/** A gauge's options: `collect` sets its value when it is scraped, instead of on every change. */
export interface GaugeOptions<L extends string = string> extends MetricOptions<L> {
  collect?: (this: Gauge<L>) => void | Promise<void>;
}

/** A counter's options: `collect` sets its value when it is scraped (from counts kept elsewhere). */
export interface CounterOptions<L extends string = string> extends MetricOptions<L> {
  collect?: (this: Counter<L>) => void | Promise<void>;
}

/** Request durations in seconds, distribution's buckets (docker/go-metrics): 5 ms to 60 s. */
export const durationBuckets: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60,
];

/** Prometheus's default buckets, which distribution's storage timers use: 5 ms to 10 s. */
export const defaultBuckets: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Body sizes in bytes, distribution's buckets: 1 KiB doubling to 4 GiB (22 buckets). */
export const sizeBuckets: readonly number[] = Array.from({ length: 22 }, (_, i) => 1024 * 2 ** i);

/** The metrics of one registry, served in Prometheus's text format. */
export class MetricsRegistry {
  private registry: Registry | undefined;
  private defaults = false;

  /** prom-client's registry, for what this class does not cover (created on first use). */
  get prometheus(): Registry {
    this.registry ??= new (prom().Registry)();
    return this.registry;
  }

  /** The counter called `options.name`, created on first use. */
  counter<L extends string>(options: CounterOptions<L>): Counter<L> {
    const { Counter } = prom();
    return this.lookup(options.name, Counter, () => new Counter<L>(this.settings(options)));
  }

  /** The gauge called `options.name`, created on first use. */
  gauge<L extends string>(options: GaugeOptions<L>): Gauge<L> {
    const { Gauge } = prom();
    return this.lookup(options.name, Gauge, () => new Gauge<L>(this.settings(options)));
  }

  /** The histogram called `options.name`, created on first use. */
  histogram<L extends string>(options: HistogramOptions<L>): Histogram<L> {
    const { Histogram } = prom();
    return this.lookup(
      options.name,
      Histogram,
      () => new Histogram<L>({ ...this.settings(options), buckets: [...options.buckets] }),
    );
  }

  /** Adds Node's process metrics (`process_*`, `nodejs_*`: CPU, memory, event loop lag, GC). */
  collectDefaultMetrics(): void {
    if (this.defaults) return;
    this.defaults = true;
    prom().collectDefaultMetrics({ register: this.prometheus });
  }

  /** Every metric in Prometheus's text exposition format. */
  scrape(): Promise<string> {
    return this.prometheus.metrics();
  }

  /** The Content-Type of `scrape()`'s text. */
  get contentType(): string {
    return this.prometheus.contentType;
  }

  private settings<L extends string>(
    options: MetricOptions<L> & { collect?: unknown },
  ): { name: string; help: string; labelNames: L[]; registers: Registry[]; collect?: never } {
    return {
      name: options.name,
      help: options.help,
      labelNames: [...(options.labelNames ?? [])],
      registers: [this.prometheus],
      ...(options.collect === undefined ? {} : { collect: options.collect as never }),
    };
  }

  private lookup<T>(name: string, kind: abstract new (...args: never[]) => T, create: () => T): T {
    const existing = this.prometheus.getSingleMetric(name);
    if (existing === undefined) return create();
    if (!(existing instanceof kind)) {
      throw new TypeError(`metric ${name} exists already as another kind of metric`);
    }
    return existing;
  }
}
