// Helpers of the shared driver test suite: random names and content, reading streams, checking
// driver errors, and watching process memory while large content streams through a driver.

import assert from "node:assert/strict";
import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { readdir, readlink } from "node:fs/promises";
import { get } from "node:http";
import { Writable, type Readable } from "node:stream";
import { inspect } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { StorageDriver } from "../driver.js";

const NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A random path component of `length` characters from [a-z0-9]. */
export function randomName(length = 12): string {
  const bytes = randomBytes(length);
  let name = "";
  for (const byte of bytes) name += NAME_CHARS[byte % NAME_CHARS.length];
  return name;
}

/** `length` random bytes. */
export function randomContent(length: number): Buffer {
  return randomBytes(length);
}

/** Asserts that `a` and `b` hold the same bytes, without printing megabytes when they differ. */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: expected a Uint8Array, got ${typeof actual}`);
  if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) === 0) return;
  const a = Buffer.from(actual);
  const b = Buffer.from(expected);
  let first = 0;
  while (first < a.length && first < b.length && a[first] === b[first]) first++;
  assert.fail(
    `${what}: got ${a.length} bytes, expected ${b.length}; first difference at byte ${first}`,
  );
}

/** What a rejected driver call must carry. */
export interface ExpectedDriverError {
  /** The stable code, such as "ERR_DRIVER_PATH_NOT_FOUND". */
  code: string;
  /** The path the error must name; omitted when the error has no single path to check. */
  path?: string;
}

/**
 * Asserts that `promise` rejects with a driver error of `expected.code` that names the driver
 * (`driverName` and in the message) and, where given, the path. Codes are compared rather than
 * classes so a third-party driver built against another copy of the contract passes too.
 */
export async function rejectsWith(
  driver: StorageDriver,
  promise: Promise<unknown>,
  expected: ExpectedDriverError,
  what: string,
): Promise<unknown> {
  let error: unknown;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(
    error !== undefined,
    `${what}: expected a rejection with ${expected.code}, it resolved`,
  );
  const fields = error as {
    code?: unknown;
    driverName?: unknown;
    path?: unknown;
    message?: unknown;
  };
  assert.equal(fields.code, expected.code, `${what}: wrong error: ${inspect(error)}`);
  assert.equal(fields.driverName, driver.name, `${what}: error.driverName`);
  assert.ok(
    typeof fields.message === "string" && fields.message.includes(driver.name),
    `${what}: the message should name the driver: ${String(fields.message)}`,
  );
  if ("path" in expected) assert.equal(fields.path, expected.path, `${what}: error.path`);
  return error;
}

/**
 * Pseudo-random content of a given size, produced one chunk at a time into a single reused
 * buffer and hashed as it goes, so a test can stream far more than it holds in memory.
 */
export class ContentStream {
  private readonly buffer: Buffer;
  private readonly hash = createHash("sha256");
  private produced = 0;

  constructor(
    readonly size: number,
    chunkSize: number,
  ) {
    this.buffer = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(size, 1)));
  }

  /**
   * The next chunk, or undefined at the end. The chunk is the same buffer each time: the caller
   * must be done with it (the writer's promise resolved) before asking for the next.
   */
  next(): Buffer | undefined {
    if (this.produced >= this.size) return undefined;
    const length = Math.min(this.buffer.length, this.size - this.produced);
    const chunk = this.buffer.subarray(0, length);
    randomFillSync(chunk);
    this.hash.update(chunk);
    this.produced += length;
    return chunk;
  }

  /** The sha256 of everything produced (call after the last chunk). */
  digest(): string {
    return this.hash.digest("hex");
  }
}

/** The sha256 and length of a stream's bytes, read without keeping them. */
export async function hashStream(
  stream: Readable,
  onChunk: (length: number) => void = () => {},
): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Uint8Array;
    hash.update(bytes);
    size += bytes.length;
    onChunk(bytes.length);
  }
  return { digest: hash.digest("hex"), size };
}

let collect: (() => void) | undefined;

/**
 * A full garbage collection, so that buffers already dropped do not count as held. V8 only
 * collects freed external memory (Buffers) lazily; without this, peak RSS would measure the
 * collector's laziness rather than what the driver keeps.
 */
export function collectGarbage(): void {
  if (collect === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) {
      collect = exposed;
    } else {
      setFlagsFromString("--expose-gc");
      collect = runInNewContext("gc") as () => void;
    }
  }
  collect();
}

/** Tracks how far the process's resident memory rises above where it was when created. */
export class MemoryWatch {
  private readonly baseline: number;
  private peak: number;
  private bytesSinceCollect = 0;

  constructor(private readonly collectEvery: number) {
    collectGarbage();
    this.baseline = process.memoryUsage.rss();
    this.peak = this.baseline;
  }

  /** Records `bytes` more having passed; samples RSS, collecting garbage every so often. */
  passed(bytes: number): void {
    this.bytesSinceCollect += bytes;
    if (this.bytesSinceCollect >= this.collectEvery) {
      this.bytesSinceCollect = 0;
      collectGarbage();
    }
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
  }

  /** The highest RSS seen minus the baseline, in bytes. */
  growth(): number {
    return this.peak - this.baseline;
  }
}

/** `ms` milliseconds from now. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A Writable that keeps what it is given, accepting each chunk a turn of the event loop later (a
 * slow client) so that writers meet backpressure. With `failAfter`, a write that would take it
 * past that many bytes fails (`"error"`) or destroys it (`"close"`, a client that went away).
 */
export class CollectingWritable extends Writable {
  private readonly chunks: Buffer[] = [];
  private received = 0;

  /**
   * With `failAfter`, once more than `bytes` arrived it errors, closes, or (for "abort") aborts
   * `controller` and goes on taking bytes.
   */
  constructor(
    private readonly failAfter?:
      | { bytes: number; how: "error" | "close" }
      | { bytes: number; how: "abort"; controller: AbortController },
  ) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: string, callback: (error?: Error) => void): void {
    // Copied: a writer may reuse its buffer once the callback has run.
    this.chunks.push(Buffer.from(chunk));
    this.received += chunk.length;
    const failAfter = this.failAfter;
    if (failAfter !== undefined && this.received > failAfter.bytes) {
      if (failAfter.how === "abort") {
        failAfter.controller.abort();
      } else if (failAfter.how === "close") {
        this.destroy();
        return;
      } else {
        setImmediate(() => callback(new Error("destination failed on purpose")));
        return;
      }
    }
    setImmediate(() => callback());
  }

  /** Everything written so far. */
  content(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * How many of this process's open file descriptors refer to a file whose name contains `name`
 * (Linux, from /proc/self/fd; elsewhere 0, so the check is not made).
 */
export async function openFilesNamed(name: string): Promise<number> {
  let fds: string[];
  try {
    fds = await readdir("/proc/self/fd");
  } catch {
    return 0;
  }
  let count = 0;
  for (const fd of fds) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target.includes(name)) count++;
  }
  return count;
}

/**
 * GETs `path` from an HTTP server on 127.0.0.1:`port` and resolves with the body; with `slow`, the
 * client waits a millisecond after each 64 KiB it takes, slower than a server on loopback writes.
 */
export function download(port: number, path: string, slow = false): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    get({ host: "127.0.0.1", port, path }, (res) => {
      const chunks: Buffer[] = [];
      let since = 0;
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        since += chunk.length;
        if (!slow || since < 64 * 1024) return;
        since = 0;
        res.pause();
        setTimeout(() => res.resume(), 1);
      });
      res.once("end", () => resolve(Buffer.concat(chunks)));
      res.once("error", reject);
    }).once("error", reject);
  });
}

/** What `driver.backendRequests` counts: the requests a driver sent, by operation. */
interface CountsRequests {
  readonly backendRequests: Readonly<Record<string, number>>;
}

/** The backend requests `run` made `driver` send, by operation (those not sent left out). */
export async function requestsSpent(
  driver: CountsRequests,
  run: () => Promise<unknown>,
): Promise<Record<string, number>> {
  const before = { ...driver.backendRequests };
  await run();
  const spent: Record<string, number> = {};
  for (const [operation, count] of Object.entries(driver.backendRequests)) {
    const more = count - (before[operation] ?? 0);
    if (more > 0) spent[operation] = more;
  }
  return spent;
}
