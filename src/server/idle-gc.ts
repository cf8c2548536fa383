// Gives memory back once a burst of requests is over. V8 collects its old generation only when it
// fills (`--initial-old-space-size=64`, cli/main.ts, lets it grow to 64 MB first) and never
// because a process went quiet, so a registry that served a flood kept its garbage: RSS 160 MiB
// two seconds after a bench run against 64 MiB after start (docs/performance.md, "Memory"). When
// no request has been in flight for a tick and the heap has grown by more than SLACK_BYTES since
// the last collection, one full collection runs; V8 then unmaps the pages it emptied.
//
// The collector is V8's `gc` function, there only when node runs with `--expose-gc` (the flags of
// cli/main.ts's first line and of `npm start`); without it nothing is done.

import type { Server } from "node:http";
import { getHeapStatistics } from "node:v8";

/** How often the server's activity is looked at. */
export const IDLE_TICK_MS = 500;
/** Heap growth since the last collection (or start) below which an idle server is left alone. */
export const SLACK_BYTES = 8 * 1024 * 1024;

/** What the idle collector needs of V8, replaceable in its unit test. */
export interface HeapControl {
  /** A full, synchronous collection. */
  collect(): void;
  /** The bytes the heap holds from the system now. */
  committed(): number;
}

/** V8's own: undefined when node runs without `--expose-gc`. */
export function v8HeapControl(): HeapControl | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") return undefined;
  return {
    collect: () => gc(),
    committed: () => getHeapStatistics().total_heap_size,
  };
}

/**
 * Watches `server`'s requests and collects garbage when it goes idle after a burst. Returns the
 * stop function. `control` undefined (no `--expose-gc`): does nothing.
 */
export function collectWhenIdle(
  server: Server,
  control: HeapControl | undefined = v8HeapControl(),
  tickMs = IDLE_TICK_MS,
): () => void {
  if (control === undefined) return () => {};
  let inFlight = 0;
  let started = 0;
  let seen = 0;
  let baseline = control.committed();
  const onRequest = (_req: unknown, res: { once(event: "close", fn: () => void): unknown }) => {
    inFlight++;
    started++;
    res.once("close", () => inFlight--);
  };
  server.on("request", onRequest);
  const timer = setInterval(() => {
    // Requests came since the last tick, or some are still running: not idle.
    if (started !== seen || inFlight > 0) {
      seen = started;
      return;
    }
    const committed = control.committed();
    // Shrunk on its own meanwhile: measure growth from there.
    if (committed < baseline) baseline = committed;
    if (committed - baseline < SLACK_BYTES) return;
    control.collect();
    baseline = control.committed();
  }, tickMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    server.off("request", onRequest);
  };
}
