// The notifier: turns what the API reports (an action on a target, by a request) into events in
// distribution's format and hands each to the endpoints that want it. Publishing never waits: each
// endpoint has its own queue and delivery loop (endpoint.ts).

import { randomUUID } from "node:crypto";
import type { StorageDriver } from "../driver/index.js";
import type { MetricsRegistry } from "../metrics/index.js";
import {
  EndpointQueue,
  type EndpointConfig,
  type EndpointInstruments,
  type NotifyLogger,
  type QueueLimits,
} from "./endpoint.js";
import type { EventOccurrence, RegistryEvent } from "./events.js";
import { DriverSpool } from "./spool.js";

/** The `notifications` section of config.yml. */
export interface NotificationsConfig {
  /** `events.includereferences`: list a manifest's references in its push and pull events. */
  includeReferences: boolean;
  endpoints: EndpointConfig[];
  /**
   * Berth's `spooldir`: a local directory for the events not delivered yet. Unset: they are
   * kept under `/berth/notifications` in the registry's storage.
   */
  spoolDirectory: string | undefined;
}

/** Where the endpoints spool: a driver and the directory of each endpoint in it. */
export interface SpoolLocation {
  driver: StorageDriver;
  directory(endpoint: string): string;
}

export interface NotifierOptions {
  config: NotificationsConfig;
  /** `source` of every event: this registry's host:port and this process's UUID. */
  source: RegistryEvent["source"];
  /** Without one, undelivered events are lost when the registry stops. */
  spool?: SpoolLocation;
  metrics?: MetricsRegistry;
  logger?: NotifyLogger;
  limits?: Partial<QueueLimits>;
}

const defaultLimits: QueueLimits = { memory: 1_000, limit: 100_000 };

/** A name fit for a path component; other names are spooled under their hash. */
function spoolName(name: string): string {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/.test(name)
    ? name
    : `x${Buffer.from(name, "utf8").toString("hex").slice(0, 64)}`;
}

function instruments(metrics: MetricsRegistry): EndpointInstruments {
  return {
    events: metrics.counter({
      name: "registry_notifications_events_total",
      help: "Notification events by endpoint and type: Events (queued), Successes, Failures (refused), Errors (no answer).",
      labelNames: ["type", "endpoint"],
    }),
    pending: metrics.gauge({
      name: "registry_notifications_pending_total",
      help: "Notification events waiting to be delivered, by endpoint.",
      labelNames: ["endpoint"],
    }),
    status: metrics.counter({
      name: "registry_notifications_status_total",
      help: "Answers of notification endpoints by status code.",
      labelNames: ["code", "endpoint"],
    }),
    dropped: metrics.counter({
      name: "registry_notifications_dropped_total",
      help: "Notification events dropped because the endpoint's queue was full.",
      labelNames: ["endpoint"],
    }),
  };
}

export class Notifier {
  readonly includeReferences: boolean;
  private readonly queues: EndpointQueue[];

  constructor(private readonly options: NotifierOptions) {
    this.includeReferences = options.config.includeReferences;
    const limits = { ...defaultLimits, ...options.limits };
    const measured = options.metrics === undefined ? undefined : instruments(options.metrics);
    this.queues = options.config.endpoints
      .filter((endpoint) => !endpoint.disabled)
      .map((endpoint) => {
        const spool =
          options.spool === undefined
            ? undefined
            : new DriverSpool(
                options.spool.driver,
                options.spool.directory(spoolName(endpoint.name)),
              );
        return new EndpointQueue(endpoint, spool, limits, options.logger, measured);
      });
  }

  /** True when some endpoint is enabled: the API then reports events. */
  get active(): boolean {
    return this.queues.length > 0;
  }

  /** Queues, ahead of anything new, the events a previous run spooled and did not deliver. */
  async start(): Promise<void> {
    for (const queue of this.queues) {
      const recovered = await queue.recover();
      if (recovered > 0) {
        this.options.logger?.info(
          { endpoint: queue.config.name, events: recovered },
          "notification events from a previous run queued for delivery",
        );
      }
    }
  }

  /** Sends an event to every endpoint that wants it; returns at once. */
  publish(occurrence: EventOccurrence): void {
    const event: RegistryEvent = {
      id: randomUUID(),
      timestamp: new Date().toISOString(),
      ...occurrence,
      source: this.options.source,
    };
    for (const queue of this.queues) {
      if (queue.wants(event)) queue.enqueue(event);
    }
  }

  /** Events waiting, by endpoint name. */
  pending(): Record<string, number> {
    return Object.fromEntries(this.queues.map((queue) => [queue.config.name, queue.length]));
  }

  /** Stops delivering; what is not delivered stays in the spool for the next start. */
  async close(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()));
  }
}
