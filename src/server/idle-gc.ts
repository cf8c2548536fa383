// Gives memory back once a burst of requests is over. V8 collects its old generation only when it
// fills (`--initial-old-space-size=64`, cli/main.ts, lets it grow to 64 MB first) and never
// because a process went quiet, so a registry that served a flood kept its garbage: RSS 160 MiB
// two seconds after a bench run against 64 MiB after start (docs/performance.md, "Memory"). When
// the heap and the buffers outside it have grown by more than SLACK_BYTES since the last collection
// and no request has been in flight for a tick (the heap alone by BUSY_SLACK_BYTES while requests
// run), one full collection runs; V8 then unmaps the pages it emptied and frees the buffers.
// Between those, the young generation is collected whenever the buffers outside the heap grew by
// SCAVENGE_SLACK_BYTES (see there): an upload's body chunks die young, but V8 collects them only
// when its semi-space fills; and the drivers' spare buffers of a kind that went unused for
// SPARES_UNUSED_MS while the other kind was used are let go of and collected (see there).
//
// The collector is V8's `gc` function, there only when node runs with `--expose-gc` (the flags of
// cli/main.ts's first line and of `npm start`); without it nothing is done.

import { getHeapStatistics } from "node:v8";
import type { ApiActivity } from "../api/index.js";

/** How often the server's activity is looked at. */
export const IDLE_TICK_MS = 500;
/** Heap growth since the last collection (or start) below which an idle server is left alone. */
export const SLACK_BYTES = 8 * 1024 * 1024;
/**
 * The same for a busy server. Request floods promote garbage into the old generation, which V8
 * leaves to grow to 64 MB (`--initial-old-space-size=64`): heap 13 → 41 MB, RSS 115 → 143 MiB in
 * 10 s of blob HEAD and `GET /v2/` floods. A collection of a heap this size takes milliseconds; a
 * large push grows the heap little (its buffers are outside it), so it rarely gets one.
 */
export const BUSY_SLACK_BYTES = 16 * 1024 * 1024;

/**
 * How often, while requests run, the buffers outside the heap are looked at (a few µs each time;
 * an idle server is not woken for it). A 1 GiB push adds ~5 MB of body chunks in this time.
 */
export const SCAVENGE_TICK_MS = 10;
/**
 * Growth of the buffers outside the heap since the last collection beyond which the young
 * generation is collected. Each 64 KiB socket read of an upload becomes a body chunk of its own
 * (Node's HTTP parser copies it), garbage once the writer has copied it into its batch; V8 collects
 * young objects only when its 4 MB semi-space fills, which an upload did every 20-30 MB of chunks.
 * glibc served the chunks (below its 256 KiB mmap threshold, cli/main.ts) from its heap, which kept
 * the pages: during skopeo's push the chunks outside the heap reached 30 MB between collections
 * and the process's anonymous memory grew by as much (docs/performance.md, "Memory over a mixed
 * run"). A young-generation collection of this kind takes well under a millisecond.
 */
export const SCAVENGE_SLACK_BYTES = 8 * 1024 * 1024;

/**
 * While requests run, the drivers' spare buffers of a kind (write batches, copy buffers) that no
 * transfer used for this long while transfers used the other kind are let go of (dropSpares, as
 * driver/spares.ts does), and a full collection frees them (they have lived long enough to be in
 * the old generation). skopeo pushes an image's layers and then pulls them five at once with no
 * idle tick between: the push's 8 MiB of spare batches were held through the pull, whose copy
 * buffers came on top (docs/performance.md, "Memory over a mixed run"). On a quiet machine the
 * pull's first GET came ~100 ms after the push's last PUT, and with 200 ms the batches went only
 * once the copy buffers were filled. Dropping after some time without the other kind's use as the
 * sign, they were dropped between a push's layers on a loaded machine (gaps of 200-400 ms), a
 * collection and 8 MiB allocated anew per layer.
 */
export const SPARES_UNUSED_MS = 50;

/** Busy ticks without a collection after which an idle tick trims the C heap. */
export const TRIM_BUSY_TICKS = 4;

/**
 * While requests keep running with no idle tick between them, the C heap is trimmed once they have
 * run this long since the last trim (when a trim is due as above), so a push of a few seconds is
 * not trimmed under it. glibc gives back its heap's top on its own only beyond
 * `MALLOC_TRIM_THRESHOLD_` (128 MiB, cli/main.ts), so a server that is never idle for a tick would
 * otherwise keep what its busiest moment took.
 */
export const BUSY_TRIM_MS = 30_000;

/** What the idle collector needs of V8, replaceable in its unit test. */
export interface HeapControl {
  /** A full, synchronous collection. */
  collect(): void;
  /** A collection of the young generation only (V8's scavenge); absent where it cannot be done. */
  scavenge?(): void;
  /**
   * The bytes V8's heap holds from the system now, and the bytes of the buffers outside it that
   * JavaScript objects keep alive (ArrayBuffers: freed only when a collection finds them garbage).
   */
  committed(): { heap: number; external: number };
  /**
   * Gives the C heap's free pages back to the system (glibc's malloc_trim, malloc-trim.ts), once
   * an idle server's collection has freed the buffers; absent where it cannot be done.
   */
  trim?(): void;
}

/**
 * V8's own, with `trim` for the C heap when given: undefined when node runs without `--expose-gc`.
 */
export function v8HeapControl(trim?: () => void): HeapControl | undefined {
  const gc = (globalThis as { gc?: (options?: { type: "major" | "minor" }) => void }).gc;
  if (typeof gc !== "function") return undefined;
  return {
    collect: () => gc(),
    scavenge: () => gc({ type: "minor" }),
    trim,
    committed: () => {
      const stats = getHeapStatistics();
      return { heap: stats.total_heap_size, external: stats.external_memory };
    },
  };
}

/**
 * Looks at the API's `activity` (the requests it counts and the handlers it runs, which it keeps
 * for its drain anyway) each tick and collects garbage as above. At each idle tick it calls
 * `dropSpares(0)`, which lets go of the buffers kept for reuse (the drivers' copy and write
 * buffers: 16 MiB after a pull and a large push) and returns their bytes; when there were any, it
 * collects so that they are freed. While busy it calls `dropSpares(SPARES_UNUSED_MS)` every
 * `scavengeTickMs` (which lets go only of a kind displaced by the other) and collects the same
 * way. At the first idle tick with no collection after a busy one or a
 * collection, it trims the C heap (`control.trim`): a tick after the collection, because V8 frees
 * the dead buffers' memory on a background thread after the collection returns, and once more at
 * the idle tick after that; while requests keep running, when one is due and they have run for
 * `busyTrimMs` since the last. From a busy tick
 * to the next idle one, every `scavengeTickMs` it collects the young generation
 * (`control.scavenge`) when the buffers outside the heap grew by SCAVENGE_SLACK_BYTES.
 * Returns the stop function. `control` undefined (no `--expose-gc`): does nothing.
 */
export function collectWhenIdle(
  activity: () => ApiActivity,
  dropSpares: (unusedForMs: number) => number,
  control: HeapControl | undefined = v8HeapControl(),
  tickMs = IDLE_TICK_MS,
  scavengeTickMs = SCAVENGE_TICK_MS,
  busyTrimMs = BUSY_TRIM_MS,
): () => void {
  if (control === undefined) return () => {};
  let seen = activity().started;
  // While requests run, when the time towards a busy trim started: the first busy tick after an
  // idle one, or the last trim since. Undefined while idle.
  let busyTrimFrom: number | undefined;
  // What the heap, and the heap with the buffers outside it, held after the last collection.
  let heapBase = 0;
  let totalBase = 0;
  const rebase = () => {
    const { heap, external } = control.committed();
    heapBase = heap;
    totalBase = heap + external;
  };
  rebase();
  // A collection ran, or requests ran for TRIM_BUSY_TICKS ticks, since the C heap was last
  // trimmed (a health check each second does not trim each second).
  let trimDue = false;
  let busyTicks = 0;
  // An idle trim ran at the last tick: the next idle tick trims once more. V8 frees the dead
  // buffers on a background thread, some after the first trim, and glibc gives back only what
  // passes MALLOC_TRIM_THRESHOLD_ (128 MiB) on its own (a pull of 1 GiB from s3: RSS 2 s after it
  // 89 and 100 MiB with one trim, 84 with two, 85 with glibc's 8 MiB threshold).
  let trimAgain = false;
  const collect = () => {
    control.collect();
    rebase();
    trimDue = true;
  };
  const trim = () => {
    trimDue = false;
    busyTicks = 0;
    if (busyTrimFrom !== undefined) busyTrimFrom = performance.now();
    control.trim?.();
  };
  const dropUnusedSpares = () => {
    if (dropSpares(SPARES_UNUSED_MS) === 0) return false;
    collect();
    return true;
  };
  const watcher = new BusyWatcher(control, scavengeTickMs, dropUnusedSpares);
  const timer = setInterval(() => {
    // Requests came since the last tick, or some are still running: busy.
    const { started, running } = activity();
    const busy = started !== seen || running > 0;
    seen = started;
    if (busy) watcher.start();
    else watcher.stop();
    const { heap, external } = control.committed();
    // Shrunk on their own meanwhile: measure growth from there.
    heapBase = Math.min(heapBase, heap);
    totalBase = Math.min(totalBase, heap + external);
    // Busy, only the heap counts: a large push's buffers come and go outside it, and collecting
    // them in bulk costs the push page faults (the reason for --initial-old-space-size=64). Idle,
    // the buffers a burst left (a pull's 2 MiB copy buffers) count too.
    const grown = busy
      ? heap - heapBase >= BUSY_SLACK_BYTES
      : heap + external - totalBase >= SLACK_BYTES;
    // Idle, the buffers kept for reuse go too; a collection frees them even when the heap and
    // the buffers did not grow by the slack since the last one (which may have run mid-burst).
    const dropped = busy ? 0 : dropSpares(0);
    if (busy) {
      trimAgain = false;
      busyTrimFrom ??= performance.now();
    } else {
      busyTrimFrom = undefined;
    }
    if (grown || dropped > 0) {
      collect();
    } else if (busy) {
      if (++busyTicks >= TRIM_BUSY_TICKS) trimDue = true;
      if (trimDue && performance.now() - busyTrimFrom! >= busyTrimMs) trim();
    } else if (trimDue) {
      trim();
      trimAgain = true;
    } else if (trimAgain) {
      trimAgain = false;
      control.trim?.();
    }
  }, tickMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    watcher.stop();
  };
}

/**
 * While started, each tick lets `dropUnusedSpares` drop and collect the spare buffers unused for a
 * while, else collects the young generation when the buffers outside the heap have grown by
 * SCAVENGE_SLACK_BYTES since their lowest reading after the last collection (V8's own scavenges
 * lower that reading too).
 */
class BusyWatcher {
  private timer: NodeJS.Timeout | undefined;
  /** The lowest reading since the last collection; an idle server's when none ran since. */
  private base: number;

  constructor(
    private readonly control: HeapControl,
    private readonly tickMs: number,
    /** Drops the spares unused for a while and collects them; false when there were none. */
    private readonly dropUnusedSpares: () => boolean,
  ) {
    this.base = control.committed().external;
  }

  /** Starts looking (a busy tick): growth counts from the last idle reading. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.look(), this.tickMs);
    this.timer.unref();
  }

  /** Stops looking (an idle tick), with what the buffers hold now as the next base. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.base = this.control.committed().external;
  }

  private look(): void {
    if (this.dropUnusedSpares()) {
      this.base = this.control.committed().external;
      return;
    }
    if (this.control.scavenge === undefined) return;
    const { external } = this.control.committed();
    this.base = Math.min(this.base, external);
    if (external - this.base < SCAVENGE_SLACK_BYTES) return;
    this.control.scavenge();
    // The dead buffers are freed on a background thread: later readings lower the base.
    this.base = this.control.committed().external;
  }
}
