// The bulk path of the protocol: content travels in `bytes` messages of up to MAX_CHUNK, batched
// from the caller's chunks straight into a buffer that leaves room for the field's protobuf header,
// so that encoding a message writes a few header bytes instead of copying the content again; and
// a sender keeps several messages in flight instead of waiting for each to reach the socket
// (docs/driver-protocol.md, "Cost", has the measurements that led here).

/** The largest `data` message a writer or reader sends; the caller's chunks are batched up to it. */
export const MAX_CHUNK = 1024 * 1024;

/** Bytes a batch keeps before its data for the field header: a tag and a varint length. */
const HEADROOM = 6;

/** Marks a message whose `data` has HEADROOM bytes of the same buffer before it. */
const FRAMED = Symbol("berth.framed");

/** A `data` message built by Batch. */
export interface DataMessage {
  data: Buffer;
  [FRAMED]: true;
}

/**
 * Full-size batch buffers kept for reuse, shared by every writer and reader of the process:
 * a fresh MAX_CHUNK buffer per message costs page faults that, measured, made up most of the
 * protocol's CPU per GiB (as FilesystemDriver's copyTo found for its read buffers).
 */
const spareBuffers: Buffer[] = [];
const SPARE_BUFFERS = 16;

/** Content gathered into one message: chunks are copied in (the caller may reuse them after). */
export class Batch {
  private readonly buffer: Buffer;
  private length = 0;

  constructor(capacity: number) {
    this.buffer =
      (capacity === MAX_CHUNK ? spareBuffers.pop() : undefined) ??
      Buffer.allocUnsafeSlow(HEADROOM + capacity);
  }

  /** Gives the buffer back for reuse: once the message was sent (its write called back). */
  release(): void {
    if (this.buffer.length === HEADROOM + MAX_CHUNK && spareBuffers.length < SPARE_BUFFERS) {
      spareBuffers.push(this.buffer);
    }
  }

  /** Bytes gathered. */
  get size(): number {
    return this.length;
  }

  /** Bytes that still fit. */
  get room(): number {
    return this.buffer.length - HEADROOM - this.length;
  }

  /** Copies as much of `chunk` as fits; returns how many bytes it took. */
  add(chunk: Uint8Array): number {
    const taken = Math.min(chunk.length, this.room);
    this.buffer.set(
      taken === chunk.length ? chunk : chunk.subarray(0, taken),
      HEADROOM + this.length,
    );
    this.length += taken;
    return taken;
  }

  /** The message carrying the gathered bytes (the batch must not be added to afterwards). */
  message(): DataMessage {
    return { data: this.buffer.subarray(HEADROOM, HEADROOM + this.length), [FRAMED]: true };
  }
}

/**
 * A serializer for a message type whose `data` is a `bytes` field numbered `field`: a Batch's
 * message is encoded in place (the field's header written into the headroom), anything else by
 * `fallback` (protobuf.js). Both give the same bytes on the wire.
 */
export function dataSerializer(
  field: number,
  fallback: (message: object) => Buffer,
): (message: object) => Buffer {
  const tag = (field << 3) | 2;
  return (message) => {
    const framed = message as Partial<DataMessage>;
    if (framed[FRAMED] !== true || framed.data === undefined) return fallback(message);
    const data = framed.data;
    const header = [tag];
    for (let rest = data.length; ; rest = Math.floor(rest / 128)) {
      if (rest < 128) {
        header.push(rest);
        break;
      }
      header.push((rest % 128) | 128);
    }
    const encoded = Buffer.from(
      data.buffer,
      data.byteOffset - header.length,
      header.length + data.length,
    );
    encoded.set(header, 0);
    return encoded;
  };
}

/** What SendWindow writes to: a gRPC call's writable side. */
interface MessageSink {
  write(message: unknown, callback: (error?: Error | null) => void): unknown;
}

/**
 * Keeps at most `limit` bytes of messages written to a call but not yet handed to its socket: the
 * sender goes on while under it (the HTTP/2 window then bounds what is on the wire) and waits
 * for `room()` when over it. Waiting for every message instead leaves both processes idle for a
 * scheduling round trip per message.
 */
export class SendWindow {
  private unflushed = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;

  constructor(private readonly limit: number) {}

  /**
   * Writes `message` (`bytes` of content) to `sink`; `batch`, the message's, is released once
   * the write called back without an error (after an error it may still be referenced).
   */
  write(sink: MessageSink, message: unknown, bytes: number, batch?: Batch): void {
    this.unflushed += bytes;
    sink.write(message, (error) => {
      this.unflushed -= bytes;
      if (error) this.failure ??= error;
      else batch?.release();
      if (this.unflushed <= this.limit || error) {
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      }
    });
  }

  /** Whether the sender should wait for `room()` before writing more. */
  get full(): boolean {
    return this.unflushed > this.limit;
  }

  /** Resolves once under the limit; rejects with the error a write failed with. */
  async room(): Promise<void> {
    while (this.failure === undefined && this.full) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure !== undefined) throw this.failure;
  }
}
