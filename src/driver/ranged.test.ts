// The ranged reader against an in-memory object whose parts answer in a chosen order, in small
// chunks: the bytes come out in order whatever order the parts arrive in, the window and the
// shared budget bound what is in flight, a failing part fails the read, destroying it aborts the
// requests in flight and gives the budget back, and a consumer that stops reading holds the part
// it is on. The s3 driver's tests run it against Ceph RGW.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { rangedRead, ReadAheadBudget, type FetchRange, type RangedReadOptions } from "./ranged.js";

const KiB = 1024;

/** A fake object store: every request recorded, bodies in 1 KiB chunks, delays per part. */
function store(object: Buffer, options: { delayOf?: (first: number) => number } = {}) {
  const requests: { first: number; last: number; signal: AbortSignal }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let sent = 0;
  const fetch: FetchRange = async (first, last, _etag, signal) => {
    requests.push({ first, last, signal });
    if (first >= object.length) return undefined;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((resolve) => setTimeout(resolve, options.delayOf?.(first) ?? 0));
    const bytes = object.subarray(first, Math.min(last + 1, object.length));
    async function* chunks() {
      try {
        for (let at = 0; at < bytes.length; at += KiB) {
          if (signal.aborted) throw signal.reason;
          sent += Math.min(KiB, bytes.length - at);
          yield bytes.subarray(at, at + KiB);
          await new Promise((resolve) => setImmediate(resolve));
        }
      } finally {
        inFlight--;
      }
    }
    return {
      body: Readable.from(chunks(), { objectMode: false }),
      total: object.length,
      etag: "e",
    };
  };
  return {
    fetch,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    get sent() {
      return sent;
    },
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const options = (budget: ReadAheadBudget, more: Partial<RangedReadOptions> = {}) => ({
  offset: 0,
  partSize: 16 * KiB,
  window: 4,
  budget,
  ...more,
});

describe("ranged reader", () => {
  it("delivers the bytes in order when later parts answer first, within the window", async () => {
    const object = randomBytes(200 * KiB + 123);
    // Each part answers sooner than the one before it.
    const backend = store(object, { delayOf: (first) => 40 - first / (16 * KiB) });
    const budget = new ReadAheadBudget(1024 * KiB);
    const read = await readAll(await rangedRead(backend.fetch, options(budget)));
    assert.ok(read.equals(object));
    assert.equal(backend.requests.length, Math.ceil(object.length / (16 * KiB)));
    assert.ok(backend.maxInFlight <= 4, `${backend.maxInFlight} parts in flight`);
    assert.ok(backend.maxInFlight >= 2, "parts ahead were fetched");
    assert.equal(budget.free, budget.bytes);
  });

  it("reads from an offset, a length, or nothing past the end", async () => {
    const object = randomBytes(100 * KiB);
    const budget = new ReadAheadBudget(64 * KiB);
    const from = await readAll(
      await rangedRead(store(object).fetch, options(budget, { offset: 5000 })),
    );
    assert.ok(from.equals(object.subarray(5000)));
    const slice = await rangedRead(
      store(object).fetch,
      options(budget, { offset: 7, length: 40_000 }),
    );
    assert.ok((await readAll(slice)).equals(object.subarray(7, 40_007)));
    const longer = await rangedRead(
      store(object).fetch,
      options(budget, { offset: 99 * KiB, length: 10 * KiB }),
    );
    assert.ok((await readAll(longer)).equals(object.subarray(99 * KiB)));
    const past = store(object);
    assert.equal(
      (await readAll(await rangedRead(past.fetch, options(budget, { offset: 100 * KiB })))).length,
      0,
    );
    assert.equal(past.requests.length, 1);
    assert.equal(budget.free, budget.bytes);
  });

  it("reads one part at a time when the budget is spent, and never more than it ahead", async () => {
    const object = randomBytes(160 * KiB);
    const spent = new ReadAheadBudget(8 * KiB);
    const alone = store(object, { delayOf: () => 5 });
    assert.ok((await readAll(await rangedRead(alone.fetch, options(spent)))).equals(object));
    assert.equal(alone.maxInFlight, 1);
    const shared = new ReadAheadBudget(32 * KiB);
    const backends = [store(object, { delayOf: () => 5 }), store(object, { delayOf: () => 5 })];
    const reads = await Promise.all(
      backends.map(async (backend) => readAll(await rangedRead(backend.fetch, options(shared)))),
    );
    for (const read of reads) assert.ok(read.equals(object));
    // Two streamed heads and two parts ahead (32 KiB) at most, across both reads.
    assert.ok(backends[0]!.maxInFlight + backends[1]!.maxInFlight <= 4 + 2);
    assert.equal(shared.free, shared.bytes);
  });

  it("fails the read with the error of one part and aborts the others", async () => {
    const object = randomBytes(128 * KiB);
    const backend = store(object, { delayOf: (first) => (first === 0 ? 30 : 0) });
    const failing: FetchRange = (first, last, etag, signal) =>
      first === 32 * KiB
        ? Promise.reject(new Error("part 3 failed"))
        : backend.fetch(first, last, etag, signal);
    const budget = new ReadAheadBudget(1024 * KiB);
    const stream = await rangedRead(failing, options(budget));
    await assert.rejects(readAll(stream), /part 3 failed/);
    assert.ok(backend.requests.every((request) => request.signal.aborted));
    assert.equal(budget.free, budget.bytes);
  });

  it("is aborted by destroying it mid-way: requests in flight aborted, budget given back", async () => {
    const object = randomBytes(512 * KiB);
    const backend = store(object, { delayOf: () => 2 });
    const budget = new ReadAheadBudget(1024 * KiB);
    const stream = await rangedRead(backend.fetch, options(budget));
    let read = 0;
    for await (const chunk of stream) {
      read += (chunk as Buffer).length;
      if (read >= 40 * KiB) break;
    }
    assert.ok(stream.destroyed);
    assert.ok(backend.requests.length < object.length / (16 * KiB), "stopped fetching");
    assert.ok(backend.requests.every((request) => request.signal.aborted));
    assert.equal(budget.free, budget.bytes);
  });

  it("holds the part it is on while the consumer does not read (backpressure)", async () => {
    const object = randomBytes(1024 * KiB);
    const backend = store(object);
    const budget = new ReadAheadBudget(32 * KiB);
    const stream = await rangedRead(backend.fetch, options(budget, { partSize: 256 * KiB }));
    // Nothing read: the first part (streamed, paused) and nothing ahead (the budget is a part).
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(backend.sent < 128 * KiB, `${backend.sent} bytes sent to a consumer that reads none`);
    assert.ok((await readAll(stream)).equals(object));
  });
});
