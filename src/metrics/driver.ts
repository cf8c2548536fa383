// Storage driver metrics from DriverBase's observer: distribution's `registry_storage_action_seconds`
// histogram by driver and action (the contract method, or `writer.write` and so on for a writer's
// calls), and a counter by outcome, which distribution has not, so that failing backends show;
// and the requests the driver sent to its backend by operation (s3, azure), retries included.

import type { CallOutcome, DriverBase, DriverCallObserver } from "../driver/index.js";
import type { Counter, Histogram } from "prom-client";
import { defaultBuckets, type MetricsRegistry } from "./registry.js";

type HistogramChild = ReturnType<Histogram<string>["labels"]>;
type CounterChild = ReturnType<Counter<string>["labels"]>;

/** Makes `driver` report its calls into `registry`; returns the observer it installed. */
export function observeDriver(registry: MetricsRegistry, driver: DriverBase): DriverCallObserver {
  const seconds = registry.histogram({
    name: "registry_storage_action_seconds",
    help: "The number of seconds that the storage action takes",
    labelNames: ["driver", "action"],
    buckets: defaultBuckets,
  });
  const calls = registry.counter({
    name: "registry_storage_action_total",
    help: "Storage driver calls by driver, action and outcome (ok, not_found, aborted, error).",
    labelNames: ["driver", "action", "outcome"],
  });
  const name = driver.name;
  // Children by label values: prom-client would hash the labels on every call.
  const histograms = new Map<string, HistogramChild>();
  const counters = new Map<string, CounterChild>();
  const observer: DriverCallObserver = (method: string, elapsed: number, outcome: CallOutcome) => {
    let histogram = histograms.get(method);
    if (histogram === undefined) {
      histogram = seconds.labels(name, method);
      histograms.set(method, histogram);
    }
    histogram.observe(elapsed);
    const key = `${method} ${outcome}`;
    let counter = counters.get(key);
    if (counter === undefined) {
      counter = calls.labels(name, method, outcome);
      counters.set(key, counter);
    }
    counter.inc();
  };
  driver.observer = observer;
  const backend = registry.counter({
    name: "registry_storage_backend_requests_total",
    help: "Requests the storage driver sent to its backend (retries included), by driver and the backend's operation.",
    labelNames: ["driver", "operation"],
  });
  const backendCounters = new Map<string, CounterChild>();
  driver.backendObserver = (operation: string) => {
    let counter = backendCounters.get(operation);
    if (counter === undefined) {
      counter = backend.labels(name, operation);
      backendCounters.set(operation, counter);
    }
    counter.inc();
  };
  return observer;
}
