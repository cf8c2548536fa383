// What every endpoint handler gets: the settings of the API handler, fixed when it is created, and
// the request at hand, routed.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { RegistryStorage } from "../storage/index.js";
import type { Caller } from "./access.js";
import type { EventPublisher } from "./events.js";
import type { ApiLogger } from "./errors.js";
import type { Route } from "./routes.js";

/** Settings shared by all requests of one API handler. */
export interface ApiContext {
  readonly storage: RegistryStorage;
  /**
   * Send blob GET/HEAD to the driver's URL (307) when it gives one. Turned off for good the first
   * time the driver gives none: the driver contract makes a null URL a property of the backend,
   * not of a path, and asking costs a storage round trip on every blob request.
   */
  redirect: boolean;
  /** Prepended to the paths in Location and Link headers (config `http.prefix`, no trailing slash). */
  readonly prefix: string;
  readonly logger: ApiLogger | undefined;
  /** Where push, pull, delete and mount events go; undefined when no endpoint is configured. */
  readonly notifier: EventPublisher | undefined;
  /** Whether deletes are enabled (`storage.delete.enabled`), for the UI's extension endpoint. */
  readonly deleteEnabled: boolean;
  /** Told of each manifest GET (retention's pull times); undefined when nothing records them. */
  readonly recordPull: ((repository: string, digest: string, tag?: string) => void) | undefined;
}

/**
 * What is known about one request beyond node's objects, shared by the server, which creates it
 * (id, logger), the API, which routes the request (handler, repository), and authentication (user).
 * The access line, the metrics and the events of the request are made from it.
 */
export interface RequestInfo {
  /** The request id: the client's `X-Request-Id` when it sent a sane one, else a new UUID. */
  readonly id: string;
  /** This request's logger: every line carries the request id. Undefined: nothing is logged. */
  readonly log: ApiLogger | undefined;
  /** The route's name once routed (distribution's handler names: manifest, blob, blob_upload...). */
  handler?: string;
  /** The repository the request is about, once routed. */
  repository?: string;
  /** The authenticated user, once authentication knows who the caller is. */
  user?: string;
}

/** One routed request. */
export interface ApiRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly info: RequestInfo;
  readonly route: Route;
  /** The query parameters; null when the URL has none (the common case, parsed lazily). */
  readonly query: URLSearchParams | null;
  readonly isHead: boolean;
  /** Who sent it, as the authorize hook found (anonymous and allowed everything without one). */
  caller: Caller;
}

/**
 * A signal aborted when the client goes away before its response is finished (the connection
 * closes first), for the storage calls that stream: the backend work they started then stops.
 * Made on demand, by the handlers that stream, so that other requests pay nothing for it.
 */
export function clientSignal(request: ApiRequest): AbortSignal {
  const controller = new AbortController();
  const { res } = request;
  res.once("close", () => {
    if (!res.writableFinished) controller.abort(new Error("the client went away"));
  });
  return controller.signal;
}

/** An endpoint handler for one method of one route. */
export type EndpointHandler = (context: ApiContext, request: ApiRequest) => Promise<void>;

/** Ends a response with no body. */
export function sendEmpty(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number>,
): void {
  headers["Content-Length"] = 0;
  res.writeHead(status, headers);
  res.end();
}

/** Ends a response with a JSON body (headers only for HEAD). */
export function sendJson(
  request: ApiRequest,
  body: unknown,
  headers: Record<string, string | number> = {},
  contentType = "application/json; charset=utf-8",
): void {
  const text = JSON.stringify(body);
  headers["Content-Type"] = contentType;
  headers["Content-Length"] = Buffer.byteLength(text);
  request.res.writeHead(200, headers);
  request.res.end(request.isHead ? undefined : text);
}
