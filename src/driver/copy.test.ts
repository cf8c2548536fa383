// copyContent through a driver's reader (the path of every driver without its own copyTo: inmemory,
// s3, azure) with a source that delivers small chunks slowly, as a network stream does: the
// destination's failure arrives while the copy waits for the source, not for the destination.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { describe, it } from "node:test";
import {
  copyContent,
  copyRange,
  copyStream,
  FULL_SIZE_OWN_BUFFERS,
  SHARED_COPY_BUFFERS,
} from "./copy.js";
import { DriverErrorCode, DestinationClosedError, type StorageDriver } from "./driver.js";
import { CollectingWritable, sleep } from "./testsuite/support.js";

const KiB = 1024;

/** A driver with only a reader: 64 chunks of 16 KiB, each a timer later (after any setImmediate). */
function slowSourceDriver(): StorageDriver {
  const chunk = Buffer.alloc(16 * KiB, 7);
  const driver: Pick<StorageDriver, "name" | "reader"> = {
    name: "slow",
    reader: () =>
      Promise.resolve(
        Readable.from(
          (async function* () {
            for (let i = 0; i < 64; i++) {
              await sleep(1);
              yield chunk;
            }
          })(),
        ),
      ),
  };
  return driver as StorageDriver;
}

describe("copyContent through a reader", () => {
  for (const how of ["error", "close"] as const) {
    it(`rejects with DestinationClosedError when the destination does ${how} between source chunks`, async () => {
      const destination = new CollectingWritable({ bytes: 100 * KiB, how });
      const error = await copyContent(slowSourceDriver(), "/a/b", destination, 0).then(
        () => assert.fail("the copy resolved"),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof DestinationClosedError, `wrong error: ${String(error)}`);
      assert.equal(error.code, DriverErrorCode.DestinationClosed);
      if (how === "error") {
        assert.match(String((error.cause as Error).message), /destination failed on purpose/);
      }
      // The destination's own "error" event (emitted after its failed write's callback) found a
      // listener: an uncaught one would fail this test. Wait until it has been emitted.
      if (!destination.closed) await new Promise((resolve) => destination.once("close", resolve));
      assert.ok(destination.content().length <= 100 * KiB + 16 * KiB);
    });
  }
});

/** A source with `count` chunks of `size` bytes queued before anyone reads (as a fast network). */
function queuedSource(count: number, size: number): { source: Readable; chunks: Buffer[] } {
  const chunks = Array.from({ length: count }, (_, index) => Buffer.alloc(size, index));
  const source = new Readable({ highWaterMark: count * size, read() {} });
  for (const chunk of chunks) source.push(chunk);
  source.push(null);
  return { source, chunks };
}

/** Records each chunk it is given, taking one per timer turn (slower than the source). */
class SlowRecordingWritable extends Writable {
  readonly received: Buffer[] = [];

  constructor(highWaterMark = 64 * KiB) {
    super({ highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error) => void): void {
    this.received.push(chunk);
    setTimeout(callback, 0);
  }
}

describe("copyStream", () => {
  it("passes the source's chunks on as they are (never joins them into a fresh buffer)", async () => {
    const { source, chunks } = queuedSource(32, 64 * KiB);
    const destination = new SlowRecordingWritable();
    await copyStream("test", "/a", source, destination, undefined, undefined);
    assert.equal(destination.received.length, chunks.length);
    destination.received.forEach((chunk, index) => assert.equal(chunk, chunks[index]));
    assert.ok(source.destroyed);
  });

  it("pauses the source only once the destination holds 1 MiB, not at the destination's own mark", async () => {
    // A socket's mark is 16 KiB: pausing there paused and resumed the source once per chunk.
    const { source, chunks } = queuedSource(64, 64 * KiB);
    const destination = new SlowRecordingWritable(16 * KiB);
    let pauses = 0;
    source.on("pause", () => pauses++);
    const copied = copyStream("test", "/a", source, destination, undefined, undefined);
    let mostQueued = 0;
    source.on("data", () => (mostQueued = Math.max(mostQueued, destination.writableLength)));
    await copied;
    assert.equal(destination.received.length, chunks.length);
    // 4 MiB through a bound of 1 MiB: a pause per MiB, not one per chunk (64 before).
    assert.ok(pauses >= 2 && pauses <= 6, `${pauses} pauses`);
    assert.ok(mostQueued >= 960 * KiB, `at most ${mostQueued} bytes queued`);
    assert.ok(mostQueued <= 1024 * KiB + 64 * KiB, `${mostQueued} bytes queued: unbounded`);
  });

  it("stops at `length`, cutting the last chunk, and destroys the source", async () => {
    const { source } = queuedSource(8, 10 * KiB);
    const destination = new SlowRecordingWritable();
    await copyStream("test", "/a", source, destination, 25 * KiB, undefined);
    assert.deepEqual(
      destination.received.map((chunk) => chunk.length),
      [10 * KiB, 10 * KiB, 5 * KiB],
    );
    assert.ok(source.destroyed);
  });

  it("rejects with the source's error, and when the source closes before its end", async () => {
    const failing = new Readable({ read() {} });
    failing.push(Buffer.alloc(KiB));
    setTimeout(() => failing.destroy(new Error("backend went away")), 5);
    await assert.rejects(
      copyStream("test", "/a", failing, new SlowRecordingWritable(), undefined, undefined),
      /backend went away/,
    );
    const closing = new Readable({ read() {} });
    setTimeout(() => closing.destroy(), 5);
    await assert.rejects(
      copyStream("test", "/a", closing, new SlowRecordingWritable(), undefined, undefined),
      /closed before its end/,
    );
  });

  it("an abort while the source is idle rejects with AbortedError and destroys the source", async () => {
    const idle = new Readable({ read() {} });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 5);
    await assert.rejects(
      copyStream("test", "/a", idle, new SlowRecordingWritable(), undefined, controller.signal),
      (error: Error & { code?: string }) => error.code === DriverErrorCode.Aborted,
    );
    assert.ok(idle.destroyed);
  });
});

/**
 * Takes each write 30 ms later (a slow client), counting the writes all such sinks hold at once;
 * none before `holdUntil` writes are held at once (then 50 ms more).
 */
class HoldingWritable extends Writable {
  static holding = 0;
  static mostHeld = 0;
  static holdUntil = 0;
  /** The bytes of the writes held, now and at most. */
  static heldBytes = 0;
  static mostHeldBytes = 0;
  private static opened: Promise<void> | undefined;
  private static open: (() => void) | undefined;
  /** The same for this sink alone: above 1 when its copy had a shared buffer. */
  holding = 0;
  mostHeld = 0;
  private readonly hash = createHash("sha256");

  constructor() {
    super({ highWaterMark: 0 });
    // Counted from write() to its callback: what a copy has handed over and not got back.
    const write = this.write.bind(this) as (
      chunk: unknown,
      callback: (error?: Error | null) => void,
    ) => boolean;
    this.write = ((chunk: Buffer, callback?: (error?: Error | null) => void) => {
      HoldingWritable.holding++;
      HoldingWritable.heldBytes += chunk.length;
      HoldingWritable.mostHeldBytes = Math.max(
        HoldingWritable.mostHeldBytes,
        HoldingWritable.heldBytes,
      );
      HoldingWritable.mostHeld = Math.max(HoldingWritable.mostHeld, HoldingWritable.holding);
      this.holding++;
      this.mostHeld = Math.max(this.mostHeld, this.holding);
      return write(chunk, (error) => {
        HoldingWritable.holding--;
        HoldingWritable.heldBytes -= chunk.length;
        this.holding--;
        callback?.(error);
      });
    }) as Writable["write"];
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error) => void): void {
    this.hash.update(chunk);
    HoldingWritable.opened ??= new Promise((resolve) => (HoldingWritable.open = resolve));
    if (HoldingWritable.holding >= HoldingWritable.holdUntil) {
      setTimeout(() => HoldingWritable.open?.(), 50);
    }
    void HoldingWritable.opened.then(() => setTimeout(callback, 30));
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

describe("copyRange", () => {
  it("bounds the buffers of many concurrent copies: one each, a few shared beyond that", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-copy-"));
    try {
      const file = join(dir, "blob");
      const content = Buffer.alloc(6 * 1024 * KiB);
      for (let i = 0; i < content.length; i += 4096) content.writeUInt32BE(i, i);
      await writeFile(file, content);
      const expected = createHash("sha256").update(content).digest("hex");
      const copies = 40;
      HoldingWritable.holding = HoldingWritable.mostHeld = 0;
      HoldingWritable.heldBytes = HoldingWritable.mostHeldBytes = 0;
      // No write completes until every copy has handed over its first buffer: the copies then
      // ask for more while all of theirs are held, whatever the machine's load.
      HoldingWritable.holdUntil = copies;
      const sinks = Array.from({ length: copies }, () => new HoldingWritable());
      await Promise.all(
        sinks.map(async (sink) => {
          const handle = await open(file, "r");
          try {
            await copyRange(handle, sink, 0, content.length, () => assert.fail("closed"));
          } finally {
            await handle.close();
          }
        }),
      );
      for (const sink of sinks) assert.equal(sink.digest(), expected);
      // 4 per copy would be 160; the shared budget is SHARED_COPY_BUFFERS beyond each copy's first.
      assert.ok(
        HoldingWritable.mostHeld <= copies + SHARED_COPY_BUFFERS,
        `held ${HoldingWritable.mostHeld} at once`,
      );
      assert.ok(
        sinks.some((sink) => sink.mostHeld > 1),
        "the shared buffers were never used",
      );
      // Full-size (2 MiB) own buffers for FULL_SIZE_OWN_BUFFERS copies, 256 KiB for the others:
      // 80 MiB held at once before that bound.
      const fullSize = 2 * 1024 * KiB;
      const bound =
        (FULL_SIZE_OWN_BUFFERS + SHARED_COPY_BUFFERS) * fullSize +
        (copies - FULL_SIZE_OWN_BUFFERS) * 256 * KiB;
      assert.ok(
        HoldingWritable.mostHeldBytes <= bound,
        `held ${HoldingWritable.mostHeldBytes} bytes at once, more than ${bound}`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("copies a range smaller than one buffer exactly", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-copy-"));
    try {
      const file = join(dir, "small");
      const content = Buffer.from("0123456789abcdef".repeat(300));
      await writeFile(file, content);
      const handle = await open(file, "r");
      const sink = new HoldingWritable();
      try {
        await copyRange(handle, sink, 5, 4005, () => assert.fail("closed"));
      } finally {
        await handle.close();
      }
      assert.equal(
        sink.digest(),
        createHash("sha256").update(content.subarray(5, 4005)).digest("hex"),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
