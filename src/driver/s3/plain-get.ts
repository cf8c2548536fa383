// Over 400 lines: one class for the driver's own GETs, from signing to body, with its socket pool.
// Ranged GETs of our own for the s3 driver's plain-HTTP endpoints: signed with the S3 client's own
// SigV4 signer (its credentials, session tokens and clock offset), sent on kept-alive `net` sockets
// of a small pool, the status line and headers read by hand, and the body passed on as the socket
// delivered it: no HTTP parser, no copy of the body, no SDK middleware per part.
//
// Why: through the SDK and Node's HTTP client, llhttp copies every body byte out of the socket's
// read into a fresh buffer (node_http_parser's on_body), and each part runs the SDK's middleware
// stack; Berth spent 1.9-2.5 s of server CPU per GiB pulled from Ceph RGW against distribution's
// 0.7-0.8. Measured (docs/performance.md, "A ranged GET of our own"): a pull through the registry
// 2.05 s of server CPU per GiB against 2.40 (medians of 9, load 11-28), the driver alone 2.5
// against 3.2 s. What is left is mostly the socket's fresh buffer per read: V8's collector and
// glibc handing heap pages back and faulting them in again (the sink's own cost aside).
//
// That fresh buffer is what `copy` (a blob GET served by the registry) does without: one GET on a
// socket reading into a buffer of its own, each read written into the client's socket before the
// next (plain-answer.ts, copyBody). Server CPU per GiB from RGW: 0.74-1.17 s against 1.15-2.45 s
// before, distribution's 0.61-0.77 (docs/performance.md, "One GET written from the socket's own
// buffer").
//
// Only definite answers are handled here: 206 with a Content-Length and a matching Content-Range,
// 404, 412 and 416. Anything else (another status, a chunked or unsized body, a connection that
// fails before answering) rejects with UnusualAnswer, and the driver sends the part through the
// SDK, which retries with backoff and maps every error as it always did. A malformed or oversized
// answer is an error, not a fallback.

import { createConnection, type Socket } from "node:net";
import type { RangeAnswer } from "../ranged.js";
import { connectReadingIntoOwnBuffer } from "./agent.js";
import type { Writable } from "node:stream";
import {
  bodySize,
  copyBody,
  parseHead,
  PlainBody,
  S3StatusError,
  type AnswerHead,
} from "./plain-answer.js";

/** Bytes of status line and headers accepted at most (RGW sends about 400). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Bytes of an error answer's body read at most; a longer one closes the connection. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;
/** Sockets open at most; further requests wait for one (the SDK's agent had the same bound). */
const MAX_SOCKETS = 128;
/** Idle sockets kept at most; more are closed when their body ends. */
const MAX_IDLE_SOCKETS = 16;
/** An idle socket is closed after this long unused. */
const IDLE_MS = 15_000;
/**
 * Bytes a socket with a reused buffer reads at most per read. Against 64 KiB (Node's default),
 * 256 KiB took a fifth off Berth's CPU per GiB pulled from RGW (medians 0.80-0.89 s against
 * 0.96-1.24 on three clusters, lower in 14 of 16 alternated pulls); 128 KiB and 1 MiB saved less
 * (docs/performance.md, "Reads of 256 KiB"). Memory: one buffer per open socket of the pool,
 * 4 MiB for the 16 kept idle.
 */
export const REUSED_READ_BYTES = 256 * 1024;

/** Signs a request the way the S3 client would (the client's own signer, see driver.ts). */
export type RequestSigner = (
  request: SignableRequest,
) => Promise<{ headers: Record<string, string> }>;

/** What the signer needs: the fields of the SDK's HttpRequest. */
export interface SignableRequest {
  method: "GET";
  protocol: "http:";
  hostname: string;
  port: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
}

/** The answer was not one this module handles: send the request through the SDK instead. */
export class UnusualAnswer extends Error {
  override readonly name = "UnusualAnswer";
}

/** Where the pool connects and how object keys become request paths. */
export interface PlainGetEndpoint {
  /** An `http:` URL; its path, if any, prefixes every request's. */
  url: URL;
  bucket: string;
  /** Sent as User-Agent after `berth`, as the SDK's client appends it to its own. */
  userAgent?: string | undefined;
}

/** A socket of the pool and whether it served a request before (a stale one is retried). */
interface PooledSocket {
  socket: Socket;
  reused: boolean;
}

/**
 * Ranged GETs on path-style URLs of one endpoint and bucket, over a pool of kept-alive sockets. A
 * socket goes back to the pool only once its answer was read to the end; otherwise it is closed.
 */
export class PlainRangedGets {
  private readonly hostname: string;
  private readonly port: number;
  private readonly host: string;
  private readonly pathPrefix: string;
  /** The User-Agent line (not signed, as the SDK does not sign it): access logs show it. */
  private readonly userAgentLine: string;
  private readonly idle: Socket[] = [];
  private readonly waiting: Array<(socket: PooledSocket) => void> = [];
  private open = 0;

  constructor(
    endpoint: PlainGetEndpoint,
    private readonly sign: RequestSigner,
    /** Called once per answer the backend gave (for the backend request metric). */
    private readonly onAnswer: () => void = () => {},
    /**
     * Sockets that read into one buffer of their own, reused for every read (see `copy`). Their
     * "data" chunks are views valid only during the event: whatever keeps one copies it.
     */
    private readonly reusedBuffers = false,
  ) {
    const { url } = endpoint;
    if (url.protocol !== "http:") throw new Error(`not an http: endpoint: ${url.href}`);
    this.hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.port = url.port === "" ? 80 : Number(url.port);
    this.host = url.host;
    this.pathPrefix = `${url.pathname.replace(/\/+$/, "")}/${encodeSegment(endpoint.bucket)}/`;
    const agent = ["berth", endpoint.userAgent]
      .filter(Boolean)
      .join(" ")
      .replace(/[^\x20-\x7e]/g, "");
    this.userAgentLine = `user-agent: ${agent}\r\n`;
  }

  /** Sockets open now, idle or busy (for tests). */
  get sockets(): number {
    return this.open;
  }

  /** Closes the idle sockets (busy ones close when their answers end). */
  close(): void {
    for (const socket of this.idle.splice(0)) socket.destroy();
  }

  /**
   * GETs bytes `first` to `last` of `key`. Resolves undefined for 416 (at or past the end);
   * rejects with S3StatusError for 404 and 412, UnusualAnswer for what the SDK should handle.
   */
  async fetch(
    key: string,
    first: number,
    last: number,
    etag: string | undefined,
    signal: AbortSignal,
  ): Promise<RangeAnswer | undefined> {
    const { socket, head, rest } = await this.send(key, `bytes=${first}-${last}`, etag, signal);
    return this.answer(socket, head, rest, first, last, signal);
  }

  /**
   * Writes bytes `first` to `last` of `key` (to its end when `last` is undefined) into
   * `destination` with one GET, each socket read written as it came: into a socket or an HTTP
   * response straight from the socket's reused buffer (no copy, no fresh buffer), the next read
   * waiting until that write has left; into any other Writable as a copy. Resolves false for 416
   * (at or past the end; nothing written), true once every byte was written and taken. Rejects
   * with S3StatusError for 404, UnusualAnswer (before any byte is written) for what the SDK should
   * handle, `closed(cause)` when the destination fails or closes, the signal's reason when it is
   * aborted, and an Error when the answer is malformed or cut short.
   */
  async copy(
    key: string,
    first: number,
    last: number | undefined,
    destination: Writable,
    closed: (cause?: unknown) => Error,
    signal: AbortSignal,
  ): Promise<boolean> {
    const range = `bytes=${first}-${last ?? ""}`;
    const { socket, head, rest } = await this.send(key, range, undefined, signal);
    const { size } = sizes(socket, head, first, last);
    if (head.status === 206 && size !== undefined) {
      await copyBody(
        socket,
        size,
        rest,
        destination,
        closed,
        signal,
        this.reusedBuffers,
        (reusable) => this.release(socket, reusable && head.keepAlive),
      );
      return true;
    }
    return this.endOrError(socket, head, size, rest);
  }

  /** Signs and sends a GET of `key` for `range`; resolves with the answer's head. */
  private async send(
    key: string,
    range: string,
    etag: string | undefined,
    signal: AbortSignal,
  ): Promise<SentRequest> {
    signal.throwIfAborted();
    if (etag !== undefined && !/^[\x20-\x7e]*$/.test(etag))
      throw new UnusualAnswer("an ETag that is not a plain header value");
    const path = this.pathPrefix + key.split("/").map(encodeSegment).join("/");
    const headers: Record<string, string> = { host: this.host, range };
    if (etag !== undefined) headers["if-match"] = etag;
    const signed = await this.sign({
      method: "GET",
      protocol: "http:",
      hostname: this.hostname,
      port: this.port,
      path,
      query: {},
      headers,
    });
    let request = `GET ${path} HTTP/1.1\r\n${this.userAgentLine}`;
    for (const [name, value] of Object.entries(signed.headers)) request += `${name}: ${value}\r\n`;
    request += "\r\n";

    let pooled = await this.acquire(signal);
    for (;;) {
      try {
        return await this.exchange(pooled.socket, request, signal);
      } catch (error) {
        // A kept-alive socket the server had closed: once more on a fresh one.
        if (!(error instanceof ClosedBeforeAnswer) || !pooled.reused) throw unusual(error);
        pooled = { socket: this.connect(), reused: false };
      }
    }
  }

  /** Sends `request` on `socket` and reads the answer's head; the socket is released or closed. */
  private exchange(socket: Socket, request: string, signal: AbortSignal): Promise<SentRequest> {
    return new Promise((resolve, reject) => {
      const received: Buffer[] = [];
      let receivedBytes = 0;
      const cleanUp = () => {
        socket.off("data", onData);
        socket.off("close", onClose);
        socket.off("error", onError);
        signal.removeEventListener("abort", onAbort);
      };
      const fail = (error: Error) => {
        cleanUp();
        socket.destroy();
        reject(error);
      };
      const onAbort = () => fail(signal.reason as Error);
      const onError = (error: Error) =>
        fail(receivedBytes === 0 ? new ClosedBeforeAnswer(error.message, { cause: error }) : error);
      const onClose = () =>
        fail(
          receivedBytes === 0
            ? new ClosedBeforeAnswer("the connection closed before an answer")
            : new Error("the connection closed within the answer's headers"),
        );
      const onData = (chunk: Buffer) => {
        // A reused buffer's view is valid only now: the head and what follows it are copied.
        received.push(this.reusedBuffers ? Buffer.from(chunk) : chunk);
        receivedBytes += chunk.length;
        const bytes = received.length === 1 ? received[0]! : Buffer.concat(received);
        if (received.length > 1) received.splice(0, received.length, bytes);
        const end = bytes.indexOf("\r\n\r\n");
        if (end === -1 || end > MAX_HEAD_BYTES) {
          if (end > MAX_HEAD_BYTES || bytes.length > MAX_HEAD_BYTES + 3)
            fail(new Error(`an answer's headers over ${MAX_HEAD_BYTES} bytes`));
          return;
        }
        cleanUp();
        socket.pause();
        this.onAnswer();
        try {
          const head = parseHead(bytes.toString("latin1", 0, end));
          resolve({ socket, head, rest: bytes.subarray(end + 4) });
        } catch (error) {
          socket.destroy();
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      };
      if (signal.aborted) return fail(signal.reason as Error);
      signal.addEventListener("abort", onAbort, { once: true });
      socket.on("data", onData);
      socket.once("close", onClose);
      socket.on("error", onError);
      socket.ref();
      socket.resume();
      socket.write(request);
    });
  }

  /** What the head says: a body to stream, the end of the object, or an error. */
  private async answer(
    socket: Socket,
    head: AnswerHead,
    rest: Buffer,
    first: number,
    last: number,
    signal: AbortSignal,
  ): Promise<RangeAnswer | undefined> {
    const { size, total } = sizes(socket, head, first, last);
    if (head.status === 206 && size !== undefined) {
      const body = new PlainBody(
        socket,
        size,
        rest,
        head.keepAlive,
        signal,
        (reusable) => this.release(socket, reusable),
        this.reusedBuffers,
      );
      return { body, total, etag: head.headers.get("etag") };
    }
    await this.endOrError(socket, head, size, rest);
    return undefined;
  }

  /**
   * An answer that is not a part's body: false for 416 (at or past the end), S3StatusError for
   * 404 and 412 (their bodies read, the socket kept), UnusualAnswer for the rest.
   */
  private async endOrError(
    socket: Socket,
    head: AnswerHead,
    size: number | undefined,
    rest: Buffer,
  ): Promise<false> {
    if (head.status === 416 || head.status === 404 || head.status === 412) {
      const text = await this.errorBody(socket, head, size, rest);
      if (head.status === 416) return false;
      throw statusError(head.status, text);
    }
    socket.destroy();
    throw new UnusualAnswer(
      `HTTP ${head.status}${size === undefined ? " without a plain Content-Length" : ""}`,
    );
  }

  /** An error answer's body as text, read to its end within a limit (else the socket closes). */
  private errorBody(
    socket: Socket,
    head: AnswerHead,
    size: number | undefined,
    rest: Buffer,
  ): Promise<string> {
    if (size === undefined || size > MAX_ERROR_BODY_BYTES || rest.length > size) {
      socket.destroy();
      return Promise.resolve("");
    }
    const chunks = [rest];
    let bytes = rest.length;
    return new Promise((resolve) => {
      const done = (reusable: boolean) => {
        socket.off("data", onData);
        socket.off("close", onEnd);
        socket.off("error", onEnd);
        if (reusable) this.release(socket, head.keepAlive);
        else socket.destroy();
        resolve(Buffer.concat(chunks).toString("utf8"));
      };
      const onEnd = () => done(false);
      const onData = (chunk: Buffer) => {
        chunks.push(this.reusedBuffers ? Buffer.from(chunk) : chunk);
        bytes += chunk.length;
        if (bytes >= size) done(bytes === size);
      };
      if (bytes === size) return done(true);
      socket.on("data", onData);
      socket.once("close", onEnd);
      socket.on("error", onEnd);
      socket.resume();
    });
  }

  /** A socket for the next request: an idle one, a new one, or the next one released. */
  private acquire(signal: AbortSignal): Promise<PooledSocket> {
    const idle = this.idle.pop();
    if (idle !== undefined) {
      leaveIdle(idle);
      return Promise.resolve({ socket: idle, reused: true });
    }
    if (this.open < MAX_SOCKETS) return Promise.resolve({ socket: this.connect(), reused: false });
    return new Promise((resolve, reject) => {
      const take = (pooled: PooledSocket) => {
        signal.removeEventListener("abort", onAbort);
        resolve(pooled);
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(take), 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(take);
    });
  }

  private connect(): Socket {
    const options = { host: this.hostname, port: this.port, noDelay: true };
    // With reused buffers, each read is a "data" event of a view valid until the next read.
    const socket = this.reusedBuffers
      ? connectReadingIntoOwnBuffer(options, REUSED_READ_BYTES)
      : createConnection(options);
    // Errors are handled by whoever uses the socket, through its "close"; between uses (and
    // before the first) an error must not be an unhandled "error" event.
    socket.on("error", ignoreError);
    this.open++;
    socket.once("close", () => {
      this.open--;
      const index = this.idle.indexOf(socket);
      if (index !== -1) this.idle.splice(index, 1);
      const next = this.waiting.shift();
      if (next !== undefined) next({ socket: this.connect(), reused: false });
    });
    return socket;
  }

  /** Takes back a socket whose answer was read to the end, or closes it. */
  private release(socket: Socket, reusable: boolean): void {
    if (!reusable || socket.destroyed) return void socket.destroy();
    const next = this.waiting.shift();
    if (next !== undefined) return next({ socket, reused: true });
    if (this.idle.length >= MAX_IDLE_SOCKETS) return void socket.destroy();
    enterIdle(socket);
    this.idle.push(socket);
  }
}

/** A request sent and the head of its answer: the socket is paused, `rest` is the body so far. */
interface SentRequest {
  socket: Socket;
  head: AnswerHead;
  rest: Buffer;
}

/**
 * The body's size and, for a 206 answer, the object's total size (its Content-Range checked); a
 * malformed answer closes the socket, whose body is unread, and throws.
 */
function sizes(
  socket: Socket,
  head: AnswerHead,
  first: number,
  last: number | undefined,
): { size: number | undefined; total: number } {
  try {
    const size = bodySize(head);
    const sized = head.status === 206 && size !== undefined;
    return { size, total: sized ? checkContentRange(head, first, last, size) : 0 };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/**
 * Checks a 206 answer's Content-Range against the range asked for (`last` undefined: to the end)
 * and the body's size; returns the object's total size.
 */
function checkContentRange(
  head: AnswerHead,
  first: number,
  last: number | undefined,
  size: number,
): number {
  const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(head.headers.get("content-range") ?? "");
  if (range === null) throw new Error("a 206 answer without a Content-Range");
  const [from, to, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
  if (
    from !== first ||
    (last !== undefined && to > last) ||
    to < from ||
    to - from + 1 !== size ||
    to >= total
  )
    throw new Error(`Content-Range ${range[0]} for bytes=${first}-${last ?? ""}, ${size} bytes`);
  return total;
}

/** An error answer as S3StatusError, with S3's code and message from its XML body. */
function statusError(status: number, text: string): S3StatusError {
  const code = /<Code>([^<]{1,200})<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]{0,1000})<\/Message>/.exec(text)?.[1];
  return new S3StatusError(status, code, message);
}

/** A request on a socket that closed or failed before any byte of an answer arrived. */
class ClosedBeforeAnswer extends Error {}

/** Errors before an answer go to the SDK's path (which retries); others are kept as they are. */
function unusual(error: unknown): unknown {
  if (error instanceof ClosedBeforeAnswer)
    return new UnusualAnswer(`no answer: ${error.message}`, { cause: error });
  return error;
}

function ignoreError(): void {}

// An idle socket: unreferenced (it keeps no process alive), closed after IDLE_MS, and closed if
// the server sends anything (nothing was asked).
function closeIdle(this: Socket): void {
  this.destroy();
}

function enterIdle(socket: Socket): void {
  socket.on("data", closeIdle);
  socket.on("timeout", closeIdle);
  socket.setTimeout(IDLE_MS);
  socket.unref();
  socket.resume();
}

function leaveIdle(socket: Socket): void {
  socket.off("data", closeIdle);
  socket.off("timeout", closeIdle);
  socket.setTimeout(0);
  socket.pause();
}

/** A key's path segment as S3 signs it: RFC 3986 unreserved characters kept, the rest escaped. */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
