// The idle collector: one collection once a burst of requests is over and the heap grew, while
// requests run only when it grew by the busy slack, none when the heap did not grow, and none
// repeated while the server stays idle. A real HTTP server; the heap is a scripted stand-in (V8's is not steerable from a test).

import assert from "node:assert/strict";
import { createServer, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, it } from "node:test";
import {
  BUSY_SLACK_BYTES,
  collectWhenIdle,
  SLACK_BYTES,
  v8HeapControl,
  type HeapControl,
} from "./idle-gc.js";

const TICK_MS = 10;

/** A heap whose committed size the test sets; collecting brings it back to `floor`. */
class ScriptedHeap implements HeapControl {
  size = 20 * 1024 * 1024;
  floor = this.size;
  external = 0;
  collections = 0;
  committed(): { heap: number; external: number } {
    return { heap: this.size, external: this.external };
  }
  collect(): void {
    this.collections++;
    this.size = this.floor;
    this.external = 0;
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

function get(server: Server, path = "/"): Promise<number> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("collectWhenIdle", () => {
  let server: Server | undefined;
  let stop: (() => void) | undefined;
  const held: ServerResponse[] = [];

  afterEach(async () => {
    stop?.();
    for (const res of held.splice(0)) res.end();
    await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
    server = undefined;
  });

  async function serve(heap: HeapControl | undefined): Promise<Server> {
    server = createServer((req, res) => {
      if (req.url === "/hold") held.push(res);
      else res.end("ok");
    });
    stop = collectWhenIdle(server, heap, TICK_MS);
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    return server;
  }

  it("collects once when a burst is over and the heap grew, not again while idle", async () => {
    const heap = new ScriptedHeap();
    const running = await serve(heap);
    for (let i = 0; i < 5; i++) assert.equal(await get(running), 200);
    heap.size += SLACK_BYTES + 1;
    await eventually(() => heap.collections === 1, "no collection after the burst");
    // Idle, the heap no bigger than the collection left it: nothing more.
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 1);
    // Another burst that grows the heap: one more.
    assert.equal(await get(running), 200);
    heap.size += SLACK_BYTES + 1;
    await eventually(() => heap.collections === 2, "no collection after the second burst");
  });

  it("waits for the request in flight to end unless the heap grew by the busy slack", async () => {
    const heap = new ScriptedHeap();
    const running = await serve(heap);
    const { port } = running.address() as AddressInfo;
    const holding = request({ host: "127.0.0.1", port, path: "/hold", agent: false });
    const answered = new Promise<void>((resolve) =>
      holding.on("response", (res) => {
        res.resume();
        res.on("end", resolve);
      }),
    );
    holding.end();
    await eventually(() => held.length === 1, "the held request did not arrive");
    heap.size += SLACK_BYTES + 1;
    assert.ok(SLACK_BYTES + 1 < BUSY_SLACK_BYTES);
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 0, "collected under a request in flight");
    // Growing on while the request runs (a flood promoting garbage): collected all the same.
    heap.size += BUSY_SLACK_BYTES;
    await eventually(() => heap.collections === 1, "no collection of a heap grown while busy");
    assert.equal(held.length, 1, "the request ended");
    held.pop()!.end("done");
    await answered;
    heap.size += SLACK_BYTES + 1;
    await eventually(() => heap.collections === 2, "no collection once the request ended");
  });

  it("counts the buffers outside the heap once idle, not while busy", async () => {
    const heap = new ScriptedHeap();
    const running = await serve(heap);
    const { port } = running.address() as AddressInfo;
    const holding = request({ host: "127.0.0.1", port, path: "/hold", agent: false });
    holding.on("response", (res) => res.resume());
    holding.end();
    await eventually(() => held.length === 1, "the held request did not arrive");
    // A large push's buffers: not collected under it.
    heap.external += BUSY_SLACK_BYTES * 4;
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 0, "collected a busy server's buffers");
    held.pop()!.end("done");
    await eventually(() => heap.collections === 1, "the buffers left were not collected");
  });

  it("leaves a heap that grew less than the slack alone", async () => {
    const heap = new ScriptedHeap();
    const running = await serve(heap);
    assert.equal(await get(running), 200);
    heap.size += SLACK_BYTES - 1;
    await sleep(TICK_MS * 10);
    assert.equal(heap.collections, 0);
  });

  it("does nothing without V8's gc (node without --expose-gc)", async () => {
    const exposed = (globalThis as { gc?: unknown }).gc;
    assert.equal(v8HeapControl() === undefined, typeof exposed !== "function");
    const running = await serve(undefined);
    assert.equal(await get(running), 200);
    assert.equal(running.listenerCount("request"), 1);
  });
});
