// One access line per request, written when the response ends (or the client goes away): method,
// path, status, body bytes, duration, remote address, user agent, and the authenticated user. The query string is left out
// (it can carry tokens), and no header other than User-Agent is logged, so an Authorization header
// never reaches the log.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { requestContext } from "../api/index.js";

/** Counts the body bytes of `res` as they are written. */
function countBodyBytes(res: ServerResponse): () => number {
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

/** Starts the access line of one request; it is written when the response closes. */
export function logAccess(logger: Logger, req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  // Taken now, before the server strips http.prefix from req.url.
  const url = req.url ?? "";
  const bodyBytes = countBodyBytes(res);
  res.once("close", () => {
    const query = url.indexOf("?");
    logger.info(
      {
        method: req.method,
        path: query === -1 ? url : url.slice(0, query),
        status: res.statusCode,
        bytes: req.method === "HEAD" ? 0 : bodyBytes(),
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        remoteAddr: req.socket.remoteAddress,
        userAgent: req.headers["user-agent"],
        user: requestContext(req).user,
        ...(res.writableFinished ? {} : { aborted: true }),
      },
      "request",
    );
  });
}
