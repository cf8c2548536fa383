// Reading one object of an HTTP object store as parallel ranged GETs, delivered in order. A single
// GET of a large object runs at the speed of one server thread fetching the object's stripes one
// after the other; a window of ranged GETs keeps several of them busy. The part being delivered
// streams through with the consumer's backpressure (its response is paused while the consumer is
// full); the parts ahead of it are read into memory, at most `partSize` bytes each, and only as
// far as a byte budget shared by every read of a driver allows, so that memory stays bounded
// whatever the number of concurrent reads: a read that finds the budget spent streams one part at
// a time, as a plain GET would. Chunks are passed on as the socket gave them (no copy).

import { Readable } from "node:stream";

/** Bytes the stream queues for its consumer before it holds the part being delivered. */
const HEAD_QUEUE_BYTES = 512 * 1024;

/** A ranged GET's answer: the body, the object's total size and its version tag. */
export interface RangeAnswer {
  body: Readable;
  /** The whole object's size (from Content-Range). */
  total: number;
  /** The object's ETag, sent back as If-Match on the later parts: a replaced object fails them. */
  etag: string | undefined;
}

/**
 * Sends one ranged GET for bytes `first` to `last` (inclusive). Resolves undefined when `first`
 * is at or past the end of the object (416), rejects with the driver's error otherwise.
 */
export type FetchRange = (
  first: number,
  last: number,
  etag: string | undefined,
  signal: AbortSignal,
) => Promise<RangeAnswer | undefined>;

/** Bytes a driver's reads may hold ahead of their consumers, all reads together. */
export class ReadAheadBudget {
  private available: number;

  constructor(readonly bytes: number) {
    this.available = bytes;
  }

  /** Takes `size` bytes if that many are left. */
  tryTake(size: number): boolean {
    if (size > this.available) return false;
    this.available -= size;
    return true;
  }

  give(size: number): void {
    this.available += size;
  }

  /** Bytes not taken (for tests and figures). */
  get free(): number {
    return this.available;
  }
}

/** How a ranged read proceeds. */
export interface RangedReadOptions {
  /** First byte to read. */
  offset: number;
  /** Bytes to read at most (default: to the end of the object). */
  length?: number;
  /** Bytes per ranged GET. */
  partSize: number;
  /** Parts in flight at most, the one being delivered included. */
  window: number;
  budget: ReadAheadBudget;
}

interface Part {
  first: number;
  last: number;
  /** Received and not yet delivered. */
  chunks: Buffer[];
  body: Readable | undefined;
  ended: boolean;
  /** Bytes taken from the budget for this part (0 for a part only ever streamed). */
  reserved: number;
}

/**
 * A Readable of the object's bytes from `offset`, fetched by `fetch` in parts of `partSize`, up to
 * `window` of them in flight. Resolves once the first part answers (its answer gives the object's
 * size), so that a missing object rejects here with the driver's error; an offset at or past the
 * end gives an empty stream. Destroying the stream aborts every request in flight; an error of
 * any part destroys it with that error. `signal` aborts the first request.
 */
export async function rangedRead(
  fetch: FetchRange,
  options: RangedReadOptions,
  signal?: AbortSignal,
): Promise<Readable> {
  const limit = options.length === undefined ? undefined : options.offset + options.length;
  if (limit === options.offset) return Readable.from([]);
  const controller = new AbortController();
  const abort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", abort, { once: true });
  let answer: RangeAnswer | undefined;
  const last = lastOfPart(options.offset, options.partSize, limit);
  try {
    answer = await fetch(options.offset, last, undefined, controller.signal);
  } finally {
    signal?.removeEventListener("abort", abort);
  }
  if (answer === undefined) return Readable.from([]);
  const end = limit === undefined ? answer.total : Math.min(limit, answer.total);
  return new RangedReadable(fetch, options, controller, answer, Math.min(last, end - 1), end);
}

/** The last byte of a part starting at `first`, within `limit` (exclusive) when known. */
function lastOfPart(first: number, partSize: number, limit: number | undefined): number {
  const last = first + partSize - 1;
  return limit === undefined ? last : Math.min(last, limit - 1);
}

class RangedReadable extends Readable {
  private readonly parts: Part[] = [];
  /** The first byte not yet assigned to a part. */
  private nextByte: number;
  private readonly etag: string | undefined;
  private wanted = false;
  private finished = false;

  constructor(
    private readonly fetchRange: FetchRange,
    private readonly options: RangedReadOptions,
    private readonly controller: AbortController,
    first: RangeAnswer,
    firstLast: number,
    /** The end (exclusive) of the bytes read. */
    private readonly end: number,
  ) {
    // Up to 512 KiB queued before the head's response is paused: with a smaller mark every chunk
    // paused and resumed the socket (a read stop and start per 64 KiB), which doubled the CPU of
    // a pull.
    super({ highWaterMark: HEAD_QUEUE_BYTES });
    this.etag = first.etag;
    this.nextByte = options.offset;
    this.attach(this.newPart(firstLast, 0), first.body);
    this.fill();
  }

  override _read(): void {
    this.wanted = true;
    this.deliver();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.controller.abort(error ?? new Error("ranged read destroyed"));
    for (const part of this.parts.splice(0)) this.release(part);
    callback(error);
  }

  private newPart(last: number, reserved: number): Part {
    const part: Part = {
      first: this.nextByte,
      last,
      chunks: [],
      body: undefined,
      ended: false,
      reserved,
    };
    this.nextByte = last + 1;
    this.parts.push(part);
    return part;
  }

  /** Starts parts ahead while the window and the budget allow. */
  private fill(): void {
    const { window, partSize, budget } = this.options;
    const end = this.end;
    while (this.nextByte < end && this.parts.length < window) {
      // The part to be delivered next needs no budget: it streams.
      const streamed = this.parts.length === 0;
      if (!streamed && !budget.tryTake(partSize)) break;
      const part = this.newPart(
        Math.min(this.nextByte + partSize, end) - 1,
        streamed ? 0 : partSize,
      );
      this.request(part);
    }
  }

  private request(part: Part): void {
    this.fetchRange(part.first, part.last, this.etag, this.controller.signal).then(
      (answer) => {
        if (this.destroyed) {
          answer?.body.destroy();
          return;
        }
        // Past the end: the object shrank (an ETag the backend does not check); never a short read.
        if (answer === undefined)
          this.destroy(new Error(`no bytes at ${part.first}: the object changed`));
        else this.attach(part, answer.body);
      },
      (error: unknown) => this.destroy(error as Error),
    );
  }

  private attach(part: Part, body: Readable): void {
    part.body = body;
    body.on("data", (chunk: Buffer) => {
      part.chunks.push(chunk);
      if (part === this.parts[0]) this.deliver();
    });
    body.once("end", () => {
      part.ended = true;
      if (part === this.parts[0]) this.deliver();
    });
    body.once("error", (error) => this.destroy(error));
    // A part ahead reads its whole range into memory (its budget); the head part streams.
    if (part === this.parts[0] && !this.wanted) body.pause();
  }

  /** Pushes what the head part has while the consumer wants more; moves on to the next part. */
  private deliver(): void {
    while (this.wanted && !this.destroyed) {
      const head = this.parts[0];
      if (head === undefined) {
        if (this.nextByte >= this.end && !this.finished) {
          this.finished = true;
          this.push(null);
        }
        return;
      }
      const chunk = head.chunks.shift();
      if (chunk !== undefined) {
        this.push(chunk);
        // Past the mark the stream asks for more only once its queue is under it again: the
        // head's response is held at twice the mark, so it is paused and resumed once per mark's
        // worth of bytes, not once per chunk, when the consumer is the slower side.
        this.wanted = this.readableLength < 2 * HEAD_QUEUE_BYTES;
        continue;
      }
      if (!head.ended) {
        // Waiting for the network: let the head's response flow again.
        head.body?.resume();
        return;
      }
      // A part ahead keeps its budget until it has been delivered: what it holds is bounded by it.
      this.parts.shift();
      this.release(head);
      this.fill();
    }
    // The consumer is full: hold the head's response (TCP then holds the server back).
    this.parts[0]?.body?.pause();
  }

  private release(part: Part): void {
    if (part.reserved > 0) this.options.budget.give(part.reserved);
    part.reserved = 0;
    part.chunks = [];
    part.body?.destroy();
  }
}
