// The HTTP metrics, with distribution's names and labels (docker/go-metrics' default HTTP metrics
// in the `registry_http` namespace): `handler` is the route's name, never the raw path, so that the
// number of series stays bounded whatever paths clients send.
//
// Hot path: prom-client's `labels(...)` hashes the label values on every call; the children are
// kept here by their label values instead, so that a request costs a few Map lookups and
// increments (figures in docs/metrics.md).

import type { Counter, Gauge, Histogram } from "prom-client";
import { durationBuckets, sizeBuckets, type MetricsRegistry } from "./registry.js";

/** The methods a label may name; others count as "other", to keep the series bounded. */
const knownMethods = new Set(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"]);

/** One request as it ended. */
export interface RequestObservation {
  /** The route's name (distribution's: base, manifest, blob, blob_upload, ...). */
  handler: string;
  method: string;
  status: number;
  seconds: number;
  bytesIn: number;
  bytesOut: number;
}

type Child<T extends { labels: (...values: string[]) => unknown }> = ReturnType<T["labels"]>;

/** Records requests into the `registry_http_*` metrics of a MetricsRegistry. */
export class HttpMetrics {
  private readonly requests: Counter<"handler" | "code" | "method">;
  private readonly duration: Histogram<"handler" | "method">;
  private readonly inFlight: Gauge<"handler">;
  private readonly requestSize: Histogram<"handler">;
  private readonly responseSize: Histogram<"handler">;
  private readonly requestChildren = new Map<string, Child<Counter<string>>>();
  private readonly durationChildren = new Map<string, Child<Histogram<string>>>();
  private readonly handlerChildren = new Map<
    string,
    {
      inFlight: Child<Gauge<string>>;
      requestSize: Child<Histogram<string>>;
      responseSize: Child<Histogram<string>>;
    }
  >();

  constructor(registry: MetricsRegistry) {
    this.requests = registry.counter({
      name: "registry_http_requests_total",
      help: "Total number of HTTP requests made.",
      labelNames: ["handler", "code", "method"],
    });
    this.duration = registry.histogram({
      name: "registry_http_request_duration_seconds",
      help: "The HTTP request latencies in seconds.",
      labelNames: ["handler", "method"],
      buckets: durationBuckets,
    });
    this.inFlight = registry.gauge({
      name: "registry_http_in_flight_requests",
      help: "The in-flight HTTP requests",
      labelNames: ["handler"],
    });
    this.requestSize = registry.histogram({
      name: "registry_http_request_size_bytes",
      help: "The HTTP request body sizes in bytes.",
      labelNames: ["handler"],
      buckets: sizeBuckets,
    });
    this.responseSize = registry.histogram({
      name: "registry_http_response_size_bytes",
      help: "The HTTP response body sizes in bytes.",
      labelNames: ["handler"],
      buckets: sizeBuckets,
    });
  }

  /** A request of `handler` started. */
  started(handler: string): void {
    this.byHandler(handler).inFlight.inc();
  }

  /** A request ended (or its client went away); `started` was called with the same handler. */
  ended(request: RequestObservation): void {
    const method = knownMethods.has(request.method) ? request.method : "other";
    const { handler } = request;
    const children = this.byHandler(handler);
    children.inFlight.dec();
    children.requestSize.observe(request.bytesIn);
    children.responseSize.observe(request.bytesOut);
    const key = `${handler} ${method}`;
    let duration = this.durationChildren.get(key);
    if (duration === undefined) {
      duration = this.duration.labels(handler, method);
      this.durationChildren.set(key, duration);
    }
    duration.observe(request.seconds);
    const codeKey = `${key} ${request.status}`;
    let counter = this.requestChildren.get(codeKey);
    if (counter === undefined) {
      counter = this.requests.labels(handler, String(request.status), method);
      this.requestChildren.set(codeKey, counter);
    }
    counter.inc();
  }

  private byHandler(handler: string) {
    let children = this.handlerChildren.get(handler);
    if (children === undefined) {
      children = {
        inFlight: this.inFlight.labels(handler),
        requestSize: this.requestSize.labels(handler),
        responseSize: this.responseSize.labels(handler),
      };
      this.handlerChildren.set(handler, children);
    }
    return children;
  }
}
