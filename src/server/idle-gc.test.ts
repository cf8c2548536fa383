// The idle collector: one collection once a burst of requests is over and the heap grew, while
// requests run only when it grew by the busy slack, none when the heap did not grow, and none
// repeated while the server stays idle; while requests run, a young-generation collection each
// time the buffers outside the heap grew by the scavenge slack, and the spare buffers dropped and
// collected once unused for a while. The API's activity and the heap are scripted stand-ins
// (V8's heap is not steerable from a test; the API's counts are tested with the API).

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, it } from "node:test";
import type { ApiActivity } from "../api/index.js";
import {
  BUSY_SLACK_BYTES,
  BUSY_TRIM_MS,
  collectWhenIdle,
  SCAVENGE_SLACK_BYTES,
  SLACK_BYTES,
  SPARES_UNUSED_MS,
  TRIM_BUSY_TICKS,
  v8HeapControl,
  type HeapControl,
} from "./idle-gc.js";

const TICK_MS = 10;
const SCAVENGE_TICK_MS = 2;

/** A heap whose committed size the test sets; collecting brings it back to `floor`. */
class ScriptedHeap implements HeapControl {
  size = 20 * 1024 * 1024;
  floor = this.size;
  external = 0;
  collections = 0;
  scavenges = 0;
  /** Whether the outside buffers die young (a scavenge frees them), or live on (a large push's). */
  youngBuffers = true;
  /** The collections there had been at each trim of the C heap. */
  trims: number[] = [];
  committed(): { heap: number; external: number } {
    return { heap: this.size, external: this.external };
  }
  collect(): void {
    this.collections++;
    this.size = this.floor;
    this.external = 0;
  }
  scavenge(): void {
    this.scavenges++;
    if (this.youngBuffers) this.external = 0;
  }
  trim(): void {
    this.trims.push(this.collections);
  }
}

/** Polls `condition` each tick, up to ~5 s (a loaded machine), then fails with `what`. */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await sleep(TICK_MS);
  }
  assert.fail(what);
}

describe("collectWhenIdle", () => {
  let stop: (() => void) | undefined;
  let activity: ApiActivity;
  let drops: boolean[];
  /** Bytes the next drop of the spare buffers lets go of. */
  let spares: number;
  /** When (performance.now()) a transfer last used the spares; Infinity: one uses them now. */
  let sparesUsedAt: number;
  /** When (performance.now()) the last drop that had spares ran. */
  let droppedAt: number;
  /** The collector's ticks so far (it looks at the activity once a tick). */
  let ticks: number;

  afterEach(() => stop?.());

  function watch(heap: HeapControl | undefined, busyTrimMs?: number): void {
    activity = { started: 0, running: 0 };
    drops = [];
    spares = 0;
    sparesUsedAt = 0;
    // Records, at each drop of the spare buffers that had some, whether a request was running.
    const dropSpares = (unusedForMs: number) => {
      if (performance.now() - sparesUsedAt < unusedForMs) return 0;
      const bytes = spares;
      spares = 0;
      if (bytes > 0) {
        drops.push(activity.running > 0);
        droppedAt = performance.now();
      }
      return bytes;
    };
    ticks = 0;
    const looked = () => {
      ticks++;
      return activity;
    };
    stop = collectWhenIdle(looked, dropSpares, heap, TICK_MS, SCAVENGE_TICK_MS, busyTrimMs);
  }

  it("collects once when a burst is over and the heap grew, not again while idle", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    activity.started += 5;
    heap.size += SLACK_BYTES + 1;
    await eventually(() => heap.collections === 1, "no collection after the burst");
    // Idle, the heap no bigger than the collection left it: nothing more.
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 1);
    // Another burst that grows the heap: one more.
    activity.started += 1;
    heap.size += SLACK_BYTES + 1;
    await eventually(() => heap.collections === 2, "no collection after the second burst");
  });

  it("waits for the request in flight to end unless the heap grew by the busy slack", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    activity.started += 1;
    activity.running = 1;
    heap.size += SLACK_BYTES + 1;
    assert.ok(SLACK_BYTES + 1 < BUSY_SLACK_BYTES);
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 0, "collected under a request in flight");
    // Growing on while the request runs (a flood promoting garbage): collected all the same.
    heap.size += BUSY_SLACK_BYTES;
    await eventually(() => heap.collections === 1, "no collection of a heap grown while busy");
    assert.equal(activity.running, 1, "the request ended");
    activity.running = 0;
    heap.size += SLACK_BYTES + 1;
    await eventually(() => heap.collections === 2, "no collection once the request ended");
  });

  it("drops the spare buffers once idle, and collects them even when nothing grew", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    activity.started += 1;
    activity.running = 1;
    spares = 4 * 1024 * 1024;
    sparesUsedAt = Number.POSITIVE_INFINITY;
    await sleep(SPARES_UNUSED_MS + TICK_MS * 10);
    assert.deepEqual(drops, [], "spare buffers dropped under a request in flight");
    assert.equal(heap.collections, 0);
    // The transfer ended just now.
    sparesUsedAt = performance.now();
    activity.running = 0;
    await eventually(() => heap.collections === 1, "the dropped spare buffers were not collected");
    assert.deepEqual(drops, [false]);
    // Idle with no spares left: nothing more.
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 1);
  });

  it("drops and collects spare buffers unused for SPARES_UNUSED_MS while requests run", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    activity.started += 1;
    activity.running = 1;
    // A push's batches, spare once it ended, while pulls run that do not use them.
    spares = 8 * 1024 * 1024;
    sparesUsedAt = performance.now();
    await eventually(() => drops.length === 1, "spares unused while busy were not dropped");
    assert.deepEqual(drops, [true], "not dropped while the request ran");
    assert.ok(
      droppedAt - sparesUsedAt >= SPARES_UNUSED_MS,
      "dropped before they went unused for SPARES_UNUSED_MS",
    );
    assert.equal(heap.collections, 1, "the dropped spares were not collected");
    // None left: no more collections while the request runs.
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 1);
  });

  it("counts the buffers outside the heap once idle, not while busy", async () => {
    const heap = new ScriptedHeap();
    heap.youngBuffers = false;
    watch(heap);
    activity.started += 1;
    activity.running = 1;
    // A large push's buffers: not collected under it (scavenged once, and alive).
    heap.external += BUSY_SLACK_BYTES * 4;
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 0, "collected a busy server's buffers");
    assert.equal(heap.scavenges, 1, "scavenged again buffers that had not grown");
    activity.running = 0;
    await eventually(() => heap.collections === 1, "the buffers left were not collected");
  });

  it("collects the young generation while busy each time the outside buffers grew by its slack", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    activity.started += 1;
    activity.running = 1;
    // An upload's body chunks, garbage once copied: young, freed by a scavenge.
    heap.external += SCAVENGE_SLACK_BYTES + 1;
    await eventually(() => heap.scavenges === 1, "no scavenge of the grown buffers");
    heap.external += SCAVENGE_SLACK_BYTES + 1;
    await eventually(() => heap.scavenges === 2, "no scavenge when they grew again");
    // Less than the slack: left to V8.
    heap.external += SCAVENGE_SLACK_BYTES - 1;
    await sleep(TICK_MS * 5);
    assert.equal(heap.scavenges, 2);
    assert.equal(heap.collections, 0, "a full collection under a request in flight");
  });

  it("does not look at the outside buffers of a server that served nothing", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    heap.external += SCAVENGE_SLACK_BYTES * 2;
    await sleep(TICK_MS * 5);
    assert.equal(heap.scavenges, 0);
  });

  it("leaves a heap that grew less than the slack alone", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    activity.started += 1;
    heap.size += SLACK_BYTES - 1;
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 0);
  });

  it("trims the C heap at the two idle ticks after a collection, not again while idle", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    activity.started += 5;
    heap.size += SLACK_BYTES + 1;
    // After the collection, never in the same tick (V8 frees the dead buffers afterwards), and at
    // the next tick again (it frees some after the first trim).
    await eventually(() => heap.trims.length >= 2, "not trimmed twice after the collection");
    await sleep(TICK_MS * 10);
    assert.deepEqual(heap.trims, [1, 1], "trimmed again while idle");
  });

  it("trims after a burst that needed no collection, once it lasted TRIM_BUSY_TICKS ticks", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    // One request: a health check. Not enough busy ticks to trim for.
    activity.started += 1;
    await sleep(TICK_MS * 10);
    assert.deepEqual(heap.trims, []);
    // Requests over more ticks than TRIM_BUSY_TICKS, the heap not grown by the busy slack (ticks
    // counted, not slept for: on a loaded machine a sleep of N ticks saw fewer).
    activity.running = 1;
    const busySince = ticks;
    await eventually(() => ticks >= busySince + TRIM_BUSY_TICKS + 2, "the collector stopped");
    assert.deepEqual(heap.trims, [], "trimmed while a request ran");
    activity.running = 0;
    await eventually(() => heap.trims.length >= 1, "no trim once the burst was over");
    assert.equal(heap.collections, 0);
  });

  it("trims a server that is never idle, at most once per busyTrimMs of requests", async () => {
    assert.ok(BUSY_TRIM_MS >= 10_000, "a busy server trimmed more than every 10 s");
    const heap = new ScriptedHeap();
    const busyTrimMs = TICK_MS * 20;
    watch(heap, busyTrimMs);
    // Idle for longer than busyTrimMs first: a burst after it still gets busyTrimMs of its own.
    await sleep(busyTrimMs * 1.5);
    // Requests all the time (a request in flight at every tick), the heap not grown by the slack.
    const busyAt = performance.now();
    activity.started += 1;
    activity.running = 1;
    const busySince = ticks;
    await eventually(() => ticks >= busySince + TRIM_BUSY_TICKS + 2, "the collector stopped");
    if (performance.now() - busyAt < busyTrimMs) {
      assert.deepEqual(heap.trims, [], "trimmed a burst that had not lasted busyTrimMs");
    }
    await eventually(() => heap.trims.length >= 2, "a server that is never idle was not trimmed");
    const elapsed = performance.now() - busyAt;
    assert.ok(elapsed >= busyTrimMs * 2, `trimmed twice in ${Math.round(elapsed)} ms while busy`);
    assert.equal(heap.collections, 0);
  });

  it("trims nothing on an idle server that served nothing", async () => {
    const heap = new ScriptedHeap();
    watch(heap);
    await sleep(TICK_MS * 10);
    assert.deepEqual(heap.trims, []);
  });

  it("does nothing without V8's gc (node without --expose-gc)", async () => {
    const exposed = (globalThis as { gc?: unknown }).gc;
    assert.equal(v8HeapControl() === undefined, typeof exposed !== "function");
    let looked = 0;
    stop = collectWhenIdle(
      () => {
        looked++;
        return { started: 1, running: 0 };
      },
      () => assert.fail("spare buffers dropped without a collector"),
      undefined,
      TICK_MS,
    );
    await sleep(TICK_MS * 5);
    assert.equal(looked, 0);
  });
});
