// One notification endpoint: its own queue, delivered in order by one loop that posts an event,
// waits for the answer and only then moves to the next, so a slow or dead endpoint delays its own
// events and nothing else (publishing never waits). Failures are retried, the same event again,
// at once until `threshold` failures in a row, then after `backoff` each time, until the endpoint
// accepts it (a 2xx or 3xx answer, as distribution counts them) or the registry stops.
//
// With a spool, each event is written to it when queued and removed once delivered; the queue
// holds at most `memory` events' text, the rest are read back from the spool when their turn
// comes, and at most `limit` events wait (beyond that new events are dropped, counted and logged).
// An event the process had not spooled when it died is lost; one that was delivered but not yet
// removed from the spool is delivered again after a restart (the receiver can tell by its `id`).

import { STATUS_CODES } from "node:http";
import type { Counter, Gauge } from "../metrics/index.js";
import { EVENTS_MEDIA_TYPE, type EventAction, type RegistryEvent } from "./events.js";
import type { EventSpool } from "./spool.js";

/** An endpoint as `notifications.endpoints[]` configures it. */
export interface EndpointConfig {
  name: string;
  url: string;
  /** Sent with every request, beside Content-Type. */
  headers: Record<string, string[]>;
  timeoutMs: number;
  /** Failures in a row after which each retry waits `backoffMs`. */
  threshold: number;
  backoffMs: number;
  /** Events whose target has one of these media types are not sent here. */
  ignoredMediaTypes: string[];
  /** Events with one of these actions are not sent here. */
  ignoredActions: EventAction[];
  disabled: boolean;
}

/** Where an endpoint reports what it does. */
export interface NotifyLogger {
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
}

/** The metrics of the endpoints (distribution's), labelled by endpoint. */
export interface EndpointInstruments {
  /** `type`: Events (queued), Successes, Failures (refused by the endpoint), Errors (no answer). */
  events: Counter<"type" | "endpoint">;
  pending: Gauge<"endpoint">;
  /** `code`: the answer's status, as "200 OK". */
  status: Counter<"code" | "endpoint">;
  dropped: Counter<"endpoint">;
}

/** How many events an endpoint keeps in memory and in all. */
export interface QueueLimits {
  memory: number;
  limit: number;
}

interface Pending {
  sequence: number;
  /** The event's JSON; undefined when only the spool has it. */
  text: string | undefined;
  /** Resolves true once the spool has the event (false: it could not be written). */
  spooled: Promise<boolean>;
  /** Set once delivered (or given up): its text no longer counts against `memory`. */
  done?: boolean;
}

const answered = (status: number): boolean => status >= 200 && status < 400;

/** Why a request got no answer, in a few words (fetch's own message is only "fetch failed"). */
function reason(error: unknown): string {
  const { name, message, cause } = error as { name?: string; message?: string; cause?: unknown };
  if (name === "TimeoutError") return "timed out";
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : (message ?? String(error));
}

export class EndpointQueue {
  private readonly pending: Pending[] = [];
  private next = 0;
  private held = 0;
  private running: Promise<void> | undefined;
  private stopping = false;
  private readonly stop = new AbortController();
  private spoolFailing = false;
  /** Whether the last attempt failed: failures are logged when they start and when they end. */
  private down = false;
  private readonly forgetting = new Set<Promise<void>>();

  constructor(
    readonly config: EndpointConfig,
    private readonly spool: EventSpool | undefined,
    private readonly limits: QueueLimits,
    private readonly logger: NotifyLogger | undefined,
    private readonly instruments: EndpointInstruments | undefined,
  ) {}

  /** Takes in the events a previous run spooled and did not deliver, ahead of any new one. */
  async recover(): Promise<number> {
    if (this.spool === undefined) return 0;
    const sequences = await this.spool.list();
    for (const sequence of sequences) {
      this.pending.push({ sequence, text: undefined, spooled: Promise.resolve(true) });
    }
    if (sequences.length > 0) this.next = sequences.at(-1)! + 1;
    this.gauge();
    this.kick();
    return sequences.length;
  }

  /** True when this endpoint wants the event (its `ignore` lists do not name it). */
  wants(event: RegistryEvent): boolean {
    if (this.config.ignoredActions.includes(event.action)) return false;
    const type = event.target.mediaType;
    return type === undefined || !this.config.ignoredMediaTypes.includes(type);
  }

  /** Queues an event; returns at once. */
  enqueue(event: RegistryEvent): void {
    if (this.stopping) return;
    const endpoint = this.config.name;
    if (this.pending.length >= this.limits.limit) {
      this.instruments?.dropped.inc({ endpoint });
      this.logger?.warn(
        { endpoint, eventId: event.id, pending: this.pending.length },
        "notification queue full: event dropped",
      );
      return;
    }
    this.instruments?.events.inc({ type: "Events", endpoint });
    const text = JSON.stringify(event);
    const item: Pending = {
      sequence: this.next++,
      text,
      spooled: Promise.resolve(false),
    };
    this.held++;
    if (this.spool !== undefined) item.spooled = this.write(item, text);
    this.pending.push(item);
    this.gauge();
    this.kick();
  }

  /** Spools an event; lets go of its text when the queue holds enough in memory. */
  private async write(item: Pending, text: string): Promise<boolean> {
    try {
      await this.spool!.write(item.sequence, text);
      this.spoolFailing = false;
    } catch (error) {
      if (!this.spoolFailing) {
        this.logger?.warn(
          { endpoint: this.config.name, err: error },
          "notification spool write failed: events kept in memory only until delivered",
        );
      }
      this.spoolFailing = true;
      return false;
    }
    const waiting = item.done !== true && this.pending[0] !== item;
    if (this.held > this.limits.memory && item.text !== undefined && waiting) {
      item.text = undefined;
      this.held--;
    }
    return true;
  }

  private gauge(): void {
    this.instruments?.pending.set({ endpoint: this.config.name }, this.pending.length);
  }

  private kick(): void {
    if (this.running !== undefined || this.stopping || this.pending.length === 0) return;
    this.running = this.deliver().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  private async deliver(): Promise<void> {
    let failures = 0;
    while (!this.stopping && this.pending.length > 0) {
      const item = this.pending[0]!;
      const text = await this.text(item);
      if (text === null) {
        failures = await this.failed(failures);
        continue;
      }
      if (text === undefined || (await this.post(text))) {
        this.pending.shift();
        item.done = true;
        if (item.text !== undefined) this.held--;
        this.gauge();
        failures = 0;
        const forgotten = this.forget(item).finally(() => this.forgetting.delete(forgotten));
        this.forgetting.add(forgotten);
        continue;
      }
      failures = await this.failed(failures);
    }
  }

  /** Counts a failure; after `threshold` in a row, waits `backoff` (or until the queue stops). */
  private async failed(failures: number): Promise<number> {
    const count = failures + 1;
    if (count < this.config.threshold || this.stopping) return count;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.config.backoffMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.stop.signal.addEventListener("abort", done, { once: true });
    });
    return count;
  }

  /** The event's text; undefined when the spool lost it, null when the spool cannot be read. */
  private async text(item: Pending): Promise<string | undefined | null> {
    if (item.text !== undefined) return item.text;
    try {
      const text = await this.spool!.read(item.sequence);
      if (text === undefined) {
        this.logger?.warn(
          { endpoint: this.config.name, sequence: item.sequence },
          "spooled notification event is gone: skipped",
        );
      }
      return text;
    } catch (error) {
      this.logger?.warn(
        { endpoint: this.config.name, err: error },
        "notification spool read failed: will retry",
      );
      return null;
    }
  }

  /** Removes a delivered event from the spool, once it is there. */
  private async forget(item: Pending): Promise<void> {
    if (!(await item.spooled)) return;
    await this.spool!.remove(item.sequence).catch((error: unknown) => {
      this.logger?.warn(
        { endpoint: this.config.name, err: error, sequence: item.sequence },
        "could not remove a delivered event from the notification spool: it may be sent again",
      );
    });
  }

  /** One attempt at delivering one event; true when the endpoint accepted it. */
  private async post(text: string): Promise<boolean> {
    const endpoint = this.config.name;
    const headers = new Headers();
    for (const [name, values] of Object.entries(this.config.headers)) {
      for (const value of values) headers.append(name, value);
    }
    headers.set("Content-Type", EVENTS_MEDIA_TYPE);
    try {
      const response = await fetch(this.config.url, {
        method: "POST",
        headers,
        body: `{"events":[${text}]}`,
        redirect: "manual",
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      await response.body?.cancel().catch(() => {});
      const code = `${response.status} ${STATUS_CODES[response.status] ?? ""}`.trim();
      this.instruments?.status.inc({ code, endpoint });
      if (answered(response.status)) {
        this.instruments?.events.inc({ type: "Successes", endpoint });
        if (this.down)
          this.logger?.info({ endpoint }, "notification endpoint accepts events again");
        this.down = false;
        return true;
      }
      this.instruments?.events.inc({ type: "Failures", endpoint });
      this.failing({ endpoint, status: response.status }, "notification endpoint refused an event");
      return false;
    } catch (error) {
      this.instruments?.events.inc({ type: "Errors", endpoint });
      const message = reason(error);
      this.failing({ endpoint, error: message }, "notification endpoint unreachable");
      return false;
    }
  }

  /** Logs the first failure of a run of failures (the metrics count every one). */
  private failing(object: object, message: string): void {
    if (!this.down) this.logger?.warn(object, `${message}; retrying until it accepts`);
    this.down = true;
  }

  /** The number of events waiting. */
  get length(): number {
    return this.pending.length;
  }

  /**
   * Stops delivering: the attempt under way finishes (within the endpoint's timeout), the events
   * still waiting stay in the spool for the next start.
   */
  async close(): Promise<void> {
    this.stopping = true;
    this.stop.abort();
    await this.running;
    await Promise.all([...this.pending.map((item) => item.spooled), ...this.forgetting]);
  }
}
