// What the server does with connections before and around the API: the `http.timeout`
// inactivity limits, the per-client `http.limits`, and answers in the API's error envelope to what
// Node's HTTP layer rejects itself (a malformed request line, headers too large, an Expect it
// cannot meet), which would otherwise go out as bare status lines.
//
// Timeouts are inactivity limits on the socket, never limits on a whole request: a 1 GiB upload
// on a slow link keeps its connection while bytes arrive. When a socket has been silent for the
// limit, the connection is cut only if the silence is the client's: a body that stopped arriving
// while Berth was reading it, a response the client stopped reading, or a keep-alive connection
// with nothing in flight. A request whose handler is busy (a long storage call) or whose body Berth
// is not reading (backpressure from a slow backend) keeps its connection.

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ApiError, errorBody, type ErrorCode } from "../api/index.js";
import type { HttpLimits, HttpTimeouts } from "../config/index.js";

/**
 * What a connection is doing, for its timeouts. No request or response is kept here: the one in
 * flight is the socket's `_httpMessage` (Node's own link, null between responses), so that a
 * finished request is garbage at once rather than held until the connection's next one.
 */
interface ConnectionState {
  readonly socket: Socket;
  /** Requests received on the connection; `watched`: the one whose periods are running. */
  requests: number;
  watched: number;
  /** When the request's body and response progress are next judged. */
  readDue: number;
  writeDue: number;
  /** The socket's byte counts when the current read and write periods began. */
  readMark: number;
  writeMark: number;
}

/** The response being written on `socket`, if any (Node clears it once a response finishes). */
function responseInFlight(socket: Socket): ServerResponse | undefined {
  const res = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
  return res === null || res === undefined || res.writableFinished ? undefined : res;
}

/** How long a client is told to wait after a 429. */
const RETRY_AFTER_SECONDS = 5;

/** Counts per client address; an address leaves the map when its count is back to 0. */
class AddressCounter {
  private readonly counts = new Map<string, number>();

  /** Takes one for `address`; false (and nothing taken) when it already holds `limit`. */
  acquire(address: string, limit: number): boolean {
    const count = this.counts.get(address) ?? 0;
    if (limit > 0 && count >= limit) return false;
    this.counts.set(address, count + 1);
    return true;
  }

  release(address: string): void {
    const count = (this.counts.get(address) ?? 1) - 1;
    if (count <= 0) this.counts.delete(address);
    else this.counts.set(address, count);
  }
}

/** A raw HTTP/1.1 response with the API's error envelope, for a socket without a ServerResponse. */
function rawErrorResponse(
  status: number,
  reason: string,
  code: ErrorCode,
  message: string,
  extra = "",
): string {
  const body = errorBody(code, message);
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    "Content-Type: application/json; charset=utf-8\r\n" +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    "Docker-Distribution-API-Version: registry/2.0\r\n" +
    extra +
    "Connection: close\r\n\r\n" +
    body
  );
}

/** The status and error of what Node's parser rejected, by its error code. */
function clientErrorResponse(code: string | undefined): string {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return rawErrorResponse(
        431,
        "Request Header Fields Too Large",
        "UNSUPPORTED",
        "request headers too large",
      );
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return rawErrorResponse(
        413,
        "Payload Too Large",
        "SIZE_INVALID",
        "chunk extensions too large",
      );
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return rawErrorResponse(
        408,
        "Request Timeout",
        "UNSUPPORTED",
        "request headers not received in time",
      );
    default:
      return rawErrorResponse(400, "Bad Request", "UNSUPPORTED", "malformed HTTP request");
  }
}

/**
 * A request body must bring at least this many bytes per `http.timeout.read` period, and a
 * response the client reads must take at least this many per `write` period: a trickle of a few
 * bytes would otherwise hold a connection forever without ever being silent.
 */
export const MIN_PROGRESS_BYTES = 1024;

/**
 * Judges the request in flight on `state`'s connection (see watchRequests): cuts the connection
 * when over a whole `read` period its body brought less than MIN_PROGRESS_BYTES while Berth was
 * ready to read it, or over a whole `write` period a response waiting on the client took less.
 */
function judge(state: ConnectionState, now: number, { readMs, writeMs }: HttpTimeouts): void {
  const { socket } = state;
  const res = responseInFlight(socket);
  if (res === undefined || socket.destroyed) return;
  const req = res.req;
  if (state.watched !== state.requests) {
    // A request this sweep sees for the first time: its periods begin now.
    state.watched = state.requests;
    state.readDue = now + readMs;
    state.readMark = socket.bytesRead;
    state.writeDue = now + writeMs;
    state.writeMark = socket.bytesWritten;
    return;
  }
  if (readMs > 0 && now >= state.readDue) {
    const progress = socket.bytesRead - state.readMark;
    state.readDue = now + readMs;
    state.readMark = socket.bytesRead;
    // A full buffer means Berth is not reading (backpressure from storage): not the client's.
    const waiting = req.readableLength >= req.readableHighWaterMark || socket.isPaused();
    if (!req.complete && !waiting && progress < MIN_PROGRESS_BYTES) return void socket.destroy();
  }
  if (writeMs > 0 && now >= state.writeDue) {
    const progress = socket.bytesWritten - state.writeMark;
    state.writeDue = now + writeMs;
    state.writeMark = socket.bytesWritten;
    // Only a response waiting on the client: a handler still at work sends nothing.
    if (!res.headersSent || socket.writableLength === 0) return;
    if (progress < MIN_PROGRESS_BYTES) socket.destroy();
  }
}

/**
 * Watches the requests in flight on `connections` with one timer for the server, instead of two
 * per request (their setInterval, clearInterval and close listener were a measurable share of a
 * small request's CPU, docs/performance.md). The timer looks every quarter of the shorter period;
 * a request's periods begin at the first look after it started, so a stalled body or response is
 * cut between 1 and 1.5 periods after it stopped moving. Returns the stop function.
 */
function watchRequests(connections: Set<ConnectionState>, timeouts: HttpTimeouts): () => void {
  const periods = [timeouts.readMs, timeouts.writeMs].filter((ms) => ms > 0);
  if (periods.length === 0) return () => {};
  const tick = Math.max(10, Math.min(...periods) / 4);
  const timer = setInterval(() => {
    const now = performance.now();
    for (const state of connections) judge(state, now, timeouts);
  }, tick);
  timer.unref();
  return () => clearInterval(timer);
}

/** True for requests that stream a blob upload's body into storage (a POST starting one has none). */
function isUpload(req: IncomingMessage): boolean {
  const method = req.method;
  if (method !== "POST" && method !== "PATCH" && method !== "PUT") return false;
  const { "content-length": length, "transfer-encoding": encoding } = req.headers;
  if (encoding === undefined && (length === undefined || length === "0")) return false;
  return (req.url ?? "").includes("/blobs/uploads/");
}

/**
 * The options of Node's server for `http.timeout`: headers must arrive within `read`, a whole
 * request has no limit (its body is watched by guardConnections), idle keep-alive connections
 * close after `idle`; the check runs often enough for short configured timeouts.
 */
export function serverTimeoutOptions({ readMs, idleMs }: HttpTimeouts): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
} {
  return {
    headersTimeout: readMs,
    requestTimeout: 0,
    keepAliveTimeout: idleMs,
    connectionsCheckingInterval: readMs > 0 ? Math.min(30_000, Math.max(50, readMs / 4)) : 30_000,
  };
}

/**
 * Applies timeouts and limits to `server` and answers Node's own rejections in the error envelope.
 * Returns the request gate: call it first for every request; false means it answered (429) and
 * the request must not go on.
 */
export function guardConnections(
  server: Server,
  timeouts: HttpTimeouts,
  limits: HttpLimits,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { idleMs } = timeouts;
  const states = new WeakMap<Socket, ConnectionState>();
  const open = new Set<ConnectionState>();
  const stopWatching = watchRequests(open, timeouts);
  server.once("close", stopWatching);
  const connections = new AddressCounter();
  const uploads = new AddressCounter();

  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    if (!connections.acquire(address, limits.connectionsPerClient)) {
      const message = `too many connections from this address (http.limits.connectionsperclient: ${limits.connectionsPerClient})`;
      socket.end(
        rawErrorResponse(
          429,
          "Too Many Requests",
          "TOOMANYREQUESTS",
          message,
          `Retry-After: ${RETRY_AFTER_SECONDS}\r\n`,
        ),
      );
      socket.destroySoon();
      return;
    }
    const state: ConnectionState = {
      socket,
      requests: 0,
      watched: 0,
      readDue: 0,
      writeDue: 0,
      readMark: 0,
      writeMark: 0,
    };
    states.set(socket, state);
    open.add(state);
    socket.once("close", () => {
      connections.release(address);
      open.delete(state);
    });
    // Until its first request; from then on Node's keepAliveTimeout (the same idle limit) takes
    // over between requests and clears the timer when the next one arrives.
    if (idleMs > 0) socket.setTimeout(idleMs);
  });

  // With a listener, Node leaves a silent socket to us instead of destroying it. Only a connection
  // with no request in flight is left to the socket's timer; requests have their watchdog.
  server.on("timeout", (socket: Socket) => {
    if (responseInFlight(socket) === undefined) socket.destroy();
  });

  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    if (
      socket.writable &&
      !socket.writableEnded &&
      // Node's own handler checks the same: no response of this connection has begun.
      !(socket as { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent
    ) {
      socket.end(clientErrorResponse(error.code));
    }
    socket.destroySoon();
  });

  // Without a listener Node drops a CONNECT's connection with no answer; a registry is no proxy.
  server.on("connect", (_req: IncomingMessage, socket: Socket) => {
    socket.end(rawErrorResponse(405, "Method Not Allowed", "UNSUPPORTED", "method CONNECT not allowed")); // prettier-ignore
    socket.destroySoon();
  });

  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    const error = new ApiError(
      "UNSUPPORTED",
      `unsupported expectation: ${JSON.stringify(req.headers.expect)}`,
      { status: 417 },
    );
    const body = errorBody(error.code, error.message);
    res.writeHead(417, {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Length": Buffer.byteLength(body),
      "Docker-Distribution-API-Version": "registry/2.0",
      Connection: "close",
    });
    res.end(body);
  });

  return (req, res) => {
    const socket = req.socket;
    const state = states.get(socket);
    if (state !== undefined) state.requests++;
    if (!isUpload(req) || limits.uploadsPerClient === 0) return true;
    const address = socket.remoteAddress ?? "";
    if (!uploads.acquire(address, limits.uploadsPerClient)) {
      const body = errorBody(
        "TOOMANYREQUESTS",
        `too many uploads in flight from this address (http.limits.uploadsperclient: ${limits.uploadsPerClient})`,
      );
      res.shouldKeepAlive = false;
      res.writeHead(429, {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": Buffer.byteLength(body),
        "Retry-After": String(RETRY_AFTER_SECONDS),
        "Docker-Distribution-API-Version": "registry/2.0",
      });
      res.end(body);
      return false;
    }
    res.once("close", () => uploads.release(address));
    return true;
  };
}
