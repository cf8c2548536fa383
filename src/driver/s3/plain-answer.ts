// The answers of the s3 driver's own ranged GETs (./plain-get.ts): the status line and headers,
// read strictly, S3's error answers in the shape of the SDK's errors (so that ./errors.ts maps
// them as it maps the SDK's), and a 206 answer's body passed on as the socket read it: as a
// Readable (PlainBody), or written straight into a destination (copyBody).

import { ServerResponse } from "node:http";
import { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { Readable, type Writable } from "node:stream";
import { WRITE_AHEAD_BYTES } from "../copy.js";

/** A status S3 answered with an error, shaped as the SDK's errors are (see ./errors.ts). */
export class S3StatusError extends Error {
  readonly Code: string | undefined;
  readonly $metadata: { httpStatusCode: number };

  constructor(status: number, code: string | undefined, message: string | undefined) {
    super(message ?? code ?? `HTTP ${status}`);
    this.name = code ?? (status === 404 ? "NotFound" : `Http${status}`);
    this.Code = code;
    this.$metadata = { httpStatusCode: status };
  }
}

/** The status line and headers of an answer. */
export interface AnswerHead {
  status: number;
  /** HTTP/1.1 without `Connection: close`. */
  keepAlive: boolean;
  /** Lower-case names; a repeated header keeps its last value (a repeated Content-Length must agree). */
  headers: Map<string, string>;
}

/**
 * Parses the status line and headers (the bytes before the blank line, which is not included).
 * Throws on anything malformed.
 */
export function parseHead(text: string): AnswerHead {
  const lines = text.split("\r\n");
  const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
  if (statusLine === null) throw new Error(`malformed status line ${JSON.stringify(lines[0])}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const header = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (header === null) throw new Error(`malformed header line ${JSON.stringify(line)}`);
    const name = header[1]!.toLowerCase();
    const value = header[2]!;
    if (name === "content-length" && headers.has(name) && headers.get(name) !== value)
      throw new Error("conflicting Content-Length headers");
    headers.set(name, value);
  }
  const connection = headers.get("connection")?.toLowerCase();
  const keepAlive = statusLine[1] === "1" ? connection !== "close" : connection === "keep-alive";
  return { status: Number(statusLine[2]), keepAlive, headers };
}

/** The body's size from Content-Length, or undefined when the answer is not plainly sized. */
export function bodySize(head: AnswerHead): number | undefined {
  if (head.headers.has("transfer-encoding")) return undefined;
  const length = head.headers.get("content-length");
  if (length === undefined) return undefined;
  if (!/^\d{1,15}$/.test(length)) throw new Error(`malformed Content-Length ${length}`);
  return Number(length);
}

/**
 * A 206 answer's body: the socket's reads passed on as they are, `size` bytes exactly. The socket
 * pauses while the consumer is full; it goes back to the pool when the last byte arrived, and is
 * closed if the body is destroyed before that. A body cut short or overlong is an error.
 */
export class PlainBody extends Readable {
  private remaining: number;
  private done = false;

  constructor(
    private readonly socket: Socket,
    size: number,
    rest: Buffer,
    private readonly keepAlive: boolean,
    private readonly signal: AbortSignal,
    private readonly release: (reusable: boolean) => void,
    /** The socket's chunks are views of a buffer it reuses: each is copied before it is kept. */
    private readonly views = false,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.remaining = size;
    this.signal.addEventListener("abort", this.onAbort, { once: true });
    socket.on("data", this.onData);
    socket.once("close", this.onClose);
    socket.on("error", this.onError);
    if (rest.length > 0) this.onData(rest);
    else if (size === 0) this.finish();
  }

  override _read(): void {
    if (!this.done) this.socket.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.done) {
      this.detach();
      this.socket.destroy();
    }
    callback(error);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.remaining -= chunk.length;
    if (this.remaining < 0) {
      this.destroy(new Error(`the answer went on past its Content-Length`));
      return;
    }
    const more = this.push(this.views ? Buffer.from(chunk) : chunk);
    if (this.remaining === 0) this.finish();
    else if (!more) this.socket.pause();
  };

  private readonly onClose = (): void => {
    this.destroy(
      new Error(`the connection closed with ${this.remaining} bytes of the part unread`),
    );
  };

  private readonly onError = (error: Error): void => {
    this.destroy(error);
  };

  private readonly onAbort = (): void => {
    this.destroy(this.signal.reason as Error);
  };

  private finish(): void {
    this.detach();
    this.done = true;
    this.release(this.keepAlive);
    this.push(null);
  }

  private detach(): void {
    this.socket.off("data", this.onData);
    this.socket.off("close", this.onClose);
    this.socket.off("error", this.onError);
    this.signal.removeEventListener("abort", this.onAbort);
  }
}

/**
 * Writes a 206 answer's body, `size` bytes (`rest` first), into `destination`; resolves once every
 * byte was written and the destination took it. The socket goes back to the pool (`release`)
 * once the last byte arrived and no write still uses its buffer; it is closed when the copy fails.
 *
 * With `views` (the socket's chunks are views of the one buffer it reads into), a chunk is written
 * to a socket or an HTTP response as it is, and flushed at once: Node corks a response's socket
 * for the rest of the tick on each write, and the copy uncorks it, so that the kernel takes the
 * chunk within the write. When it did not take all of it, the socket reads nothing more until
 * that write is done, since the next read would overwrite what is still queued. Into any other
 * Writable (which may keep a chunk it was given, a Transform's queue) a chunk is copied first.
 */
export function copyBody(
  socket: Socket,
  size: number,
  rest: Buffer,
  destination: Writable,
  closed: (cause?: unknown) => Error,
  signal: AbortSignal,
  views: boolean,
  release: (reusable: boolean) => void,
): Promise<void> {
  const flushable = views ? flushableSocket(destination) : undefined;
  return new Promise<void>((resolve, reject) => {
    let remaining = size;
    let issued = 0;
    let done = 0;
    /** The write whose chunk is a view still queued (0: none); the socket waits for it. */
    let holding = 0;
    let released = false;
    let settled = false;

    const detachSocket = () => {
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onError);
    };
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      detachSocket();
      signal.removeEventListener("abort", onAbort);
      destination.off("drain", onDrain);
      // The destination's own "error" after a failure must not go unhandled: a listener stays.
      destination.off("close", onDestinationClose);
      if (error === undefined) {
        destination.off("error", onDestinationError);
        resolve();
        return;
      }
      if (!released) {
        released = true;
        socket.destroy();
      }
      reject(error);
    };
    const finishIfDone = () => {
      if (remaining > 0 || holding !== 0) return;
      if (!released) {
        released = true;
        detachSocket();
        release(true);
      }
      if (done === issued) settle();
    };
    const onWritten = (error?: Error | null) => {
      done++;
      if (error) return settle(closed(error));
      if (holding !== 0 && done >= holding) {
        holding = 0;
        if (remaining > 0) socket.resume();
      }
      finishIfDone();
    };
    /** The socket is paused until the destination drains (copies only: see WRITE_AHEAD_BYTES). */
    let draining = false;
    const waitForDrain = () => {
      if (draining) return;
      draining = true;
      socket.pause();
      destination.once("drain", onDrain);
    };
    const onDrain = () => {
      draining = false;
      if (remaining > 0) socket.resume();
    };
    const write = (chunk: Buffer, view: boolean): void => {
      if (chunk.length > remaining) {
        settle(new Error("the answer went on past its Content-Length"));
        return;
      }
      remaining -= chunk.length;
      issued++;
      if (view && flushable !== undefined) {
        const corked = flushable.writableCorked;
        destination.write(chunk, onWritten);
        if (flushable.writableCorked > corked) flushable.uncork();
        if (destination.writableLength > 0) {
          holding = issued;
          socket.pause();
        }
      } else {
        destination.write(view ? Buffer.from(chunk) : chunk, onWritten);
        if (destination.writableNeedDrain && destination.writableLength >= WRITE_AHEAD_BYTES)
          waitForDrain();
      }
      if (remaining === 0) finishIfDone();
    };
    const onData = (chunk: Buffer) => {
      if (!settled) write(chunk, views);
    };
    const onClose = () => {
      if (remaining > 0) {
        settle(new Error(`the connection closed with ${remaining} bytes of the body unread`));
        return;
      }
      // Closed after the last byte (while a write still held it): nothing lost, nothing reusable.
      released = true;
      detachSocket();
      finishIfDone();
    };
    const onError = (error: Error) => settle(error);
    const onAbort = () => settle(signal.reason as Error);
    const onDestinationError = (error: Error) => settle(closed(error));
    const onDestinationClose = () => settle(closed());

    if (signal.aborted) return onAbort();
    if (destination.destroyed) return onDestinationClose();
    signal.addEventListener("abort", onAbort, { once: true });
    destination.on("error", onDestinationError);
    destination.once("close", onDestinationClose);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.on("error", onError);
    if (rest.length > 0) write(rest, false);
    if (settled) return;
    if (remaining === 0) finishIfDone();
    else if (draining || destination.writableNeedDrain) waitForDrain();
    else socket.resume();
  });
}

/**
 * The socket a chunk written to `destination` goes into at once, when the destination is one
 * that keeps no chunk past the kernel's taking it: a `net` socket, or an HTTP/1 response on one.
 * Not a TLS socket: its writes complete on a later tick (none of 50 writes of 64 KiB within the
 * call, on loopback), so every read would pause the backend socket; a copy costs what a fresh
 * buffer per read did.
 */
function flushableSocket(destination: Writable): Socket | undefined {
  const socket: unknown = destination instanceof ServerResponse ? destination.socket : destination;
  return socket instanceof Socket && !(socket instanceof TLSSocket) ? socket : undefined;
}
