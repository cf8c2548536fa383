// The answers of the s3 driver's own ranged GETs (./plain-get.ts): the status line and headers,
// read strictly, S3's error answers in the shape of the SDK's errors (so that ./errors.ts maps
// them as it maps the SDK's), and a 206 answer's body passed on as the socket read it.

import type { Socket } from "node:net";
import { Readable } from "node:stream";

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
    const more = this.push(chunk);
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
