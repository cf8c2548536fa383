// What the server does around every request: give it an id (the client's `X-Request-Id` when it
// sent a sane one, else a new UUID, returned in the `X-Request-Id` response header), a logger whose
// lines carry that id, and, when the response closes, one access line and the HTTP metrics.
//
// The access line has method, path, status, bytes in and out, duration, remote address, user
// agent, and the repository and user when known. The query string is left out (it can carry
// tokens), and no header other than User-Agent is logged, so an Authorization header never
// reaches the log.

import { randomFillSync } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { presetHeader, type ApiLogger, type RequestInfo } from "../api/index.js";
import type { Gauge, HttpMetrics } from "../metrics/index.js";

/** What the server records of its requests. */
export interface RequestTracking {
  logger: Logger;
  /** Write the access line (config `log.accesslog.disabled` turns it off). */
  accessLog: boolean;
  /** HTTP metrics, when Prometheus metrics are enabled. */
  http: HttpMetrics | undefined;
  /** The uploads-in-progress gauge, when Prometheus metrics are enabled. */
  uploads: Gauge | undefined;
}

/** A request id a client may choose: printable ASCII, no spaces, at most 128 characters. */
const clientId = /^[\x21-\x7e]{1,128}$/;

/** Random bytes for request ids: one randomFillSync per 256 ids. */
const idBytes = Buffer.allocUnsafeSlow(16 * 256);
let idOffset = idBytes.length;
/** Where a request id is written, dashes and version in place. */
const idText = Buffer.from("00000000-0000-4000-8000-000000000000", "latin1");
const HEX_DIGITS = Buffer.from("0123456789abcdef", "latin1");
/** Where each of the 16 bytes' two hex digits go in the text. */
const ID_POSITIONS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * A random (version 4) UUID, as crypto.randomUUID makes, written into a buffer and read out as
 * one string: Node's randomUUID concatenates 20 pieces, 590 of a `GET /v2/`'s 8,400 bytes
 * allocated (a sampling heap profile, docs/performance.md); 180-440 against 570-610 ns an id in
 * a micro-benchmark.
 */
export function requestId(): string {
  if (idOffset === idBytes.length) {
    randomFillSync(idBytes);
    idOffset = 0;
  }
  for (let i = 0; i < 16; i++) {
    let byte = idBytes[idOffset + i]!;
    if (i === 6) byte = (byte & 0x0f) | 0x40;
    else if (i === 8) byte = (byte & 0x3f) | 0x80;
    const at = ID_POSITIONS[i]!;
    idText[at] = HEX_DIGITS[byte >> 4]!;
    idText[at + 1] = HEX_DIGITS[byte & 15]!;
  }
  idOffset += 16;
  return idText.toString("latin1");
}

/** Counts body bytes as node's HTTP parser hands them to the request stream. */
function countBodyIn(req: IncomingMessage): () => number {
  let bytes = 0;
  const push = req.push.bind(req);
  req.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk instanceof Uint8Array) bytes += chunk.byteLength;
    return push(chunk, encoding);
  };
  return () => bytes;
}

/** Counts the body bytes of `res` as they are written. */
function countBodyOut(res: ServerResponse): () => number {
  let bytes = 0;
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  const count = (chunk: unknown, encoding: unknown): void => {
    if (chunk === undefined || chunk === null || typeof chunk === "function") return;
    bytes +=
      typeof chunk === "string"
        ? Buffer.byteLength(
            chunk,
            typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8",
          )
        : (chunk as Uint8Array).byteLength;
  };
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    count(chunk, rest[0]);
    return write(chunk, ...rest);
  }) as ServerResponse["write"];
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    count(chunk, rest[0]);
    return end(chunk, ...rest);
  }) as ServerResponse["end"];
  return () => bytes;
}

/** True for the requests that carry an upload's bytes. */
function isUpload(info: RequestInfo, method: string | undefined): boolean {
  return (
    (info.handler === "blob_upload_chunk" && (method === "PATCH" || method === "PUT")) ||
    (info.handler === "blob_upload" && method === "POST")
  );
}

/**
 * What is known of one request (its RequestInfo), and, when an access line or metrics are kept,
 * what they need when the response closes. One object per request: no closures unless counting.
 * It is also the request's logger, which makes its pino child (with the request id) only when
 * something is logged.
 */
export class TrackedRequest implements RequestInfo, ApiLogger {
  handler?: string;
  repository?: string;
  user?: string;
  /** The in-flight gauge's handler label, once `routed` counted the request in it. */
  private inFlight: string | undefined = undefined;
  private upload = false;
  private child: Logger | undefined = undefined;

  constructor(
    readonly id: string,
    private readonly tracking: RequestTracking,
    private readonly req: IncomingMessage,
  ) {}

  get log(): ApiLogger {
    return this;
  }

  error(object: object, message?: string): void {
    this.logger().error(object, message);
  }

  warn(object: object, message?: string): void {
    this.logger().warn(object, message);
  }

  private logger(): Logger {
    return (this.child ??= this.tracking.logger.child({ requestId: this.id }));
  }

  /** Call once the API has routed the request (handler known): the in-flight gauges. */
  routed(): void {
    const { http, uploads } = this.tracking;
    if (http === undefined || this.handler === undefined) return;
    this.inFlight = this.handler;
    http.started(this.inFlight);
    this.upload = isUpload(this, this.req.method);
    if (this.upload) uploads?.inc();
  }

  /** The access line and metrics, once the response has closed. */
  closed(
    res: ServerResponse,
    url: string,
    seconds: number,
    bytesIn: number,
    bytesOut: number,
  ): void {
    const { req, tracking } = this;
    const out = req.method === "HEAD" ? 0 : bytesOut;
    if (this.inFlight !== undefined) {
      if (this.upload) tracking.uploads?.dec();
      tracking.http!.ended({
        handler: this.inFlight,
        method: req.method ?? "GET",
        status: res.statusCode,
        seconds,
        bytesIn,
        bytesOut: out,
      });
    }
    if (!tracking.accessLog) return;
    const query = url.indexOf("?");
    tracking.logger.info(
      {
        requestId: this.id,
        method: req.method,
        path: query === -1 ? url : url.slice(0, query),
        status: res.statusCode,
        bytesIn,
        bytesOut: out,
        durationMs: Math.round(seconds * 1_000_000) / 1000,
        remoteAddr: req.socket.remoteAddress,
        userAgent: req.headers["user-agent"],
        ...(this.repository === undefined ? {} : { repository: this.repository }),
        ...(this.user === undefined ? {} : { user: this.user }),
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      "request",
    );
  }
}

/**
 * Starts tracking a request: its id, header and logger now; the access line and metrics when the
 * response closes (only when either is kept). Call `routed` once the API has routed it.
 */
export function trackRequest(
  req: IncomingMessage,
  res: ServerResponse,
  tracking: RequestTracking,
): TrackedRequest {
  const header = req.headers["x-request-id"];
  const id = typeof header === "string" && clientId.test(header) ? header : requestId();
  presetHeader(res, "X-Request-Id", id);
  const tracked = new TrackedRequest(id, tracking, req);
  if (!tracking.accessLog && tracking.http === undefined) return tracked;

  const started = performance.now();
  // Taken now, before the server strips http.prefix from req.url.
  const url = req.url ?? "";
  const bytesIn = countBodyIn(req);
  const bytesOut = countBodyOut(res);
  res.once("close", () => {
    tracked.closed(res, url, (performance.now() - started) / 1000, bytesIn(), bytesOut());
  });
  return tracked;
}
