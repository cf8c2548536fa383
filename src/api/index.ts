// The OCI Distribution v1.1 HTTP API as one plain node:http request handler. The server (src/server)
// owns the process side — listening, TLS, the `http.prefix` it strips before calling this, access
// logs, health — and hands every request under `/v2/` here.

import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RegistryStorage } from "../storage/index.js";
import { accessNeeds, OPEN_CALLER, requestContext, type AuthorizeHook } from "./access.js";
import { listTagDetails, repositoryUsage } from "./berth.js";
import { deleteBlob, getBlob } from "./blobs.js";
import type { ApiContext, ApiRequest, EndpointHandler, RequestInfo } from "./context.js";
import type { EventPublisher } from "./events.js";
import { listCatalog, listReferrers, listTags } from "./discovery.js";
import { ApiError, writeError, type ApiLogger } from "./errors.js";
import { deleteManifest, getManifest, putManifest } from "./manifests.js";
import { presetHeader } from "./response.js";
import { ALLOWED_METHODS, HANDLER_NAMES, route, type RouteKind } from "./routes.js";
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from "./uploads.js";

export {
  ApiError,
  errorBody,
  errorStatus,
  writeError,
  type ApiLogger,
  type ErrorCode,
} from "./errors.js";
export { HANDLER_NAMES, route, type Route, type RouteKind } from "./routes.js";
export type { RequestInfo } from "./context.js";
export { ApiResponse, presetHeader } from "./response.js";
export type { EventPublisher } from "./events.js";
export { DEFAULT_TAG_DETAILS, MAX_TAG_DETAILS } from "./berth.js";
export type { Platform, RepositoryUsagePage, TagDetail, TagDetailsPage } from "./berth-types.js";
export {
  accessNeeds,
  OPEN_CALLER,
  requestContext,
  type AccessNeed,
  type AccessRequest,
  type Action,
  type AuthorizeHook,
  type Caller,
  type RequestContext,
} from "./access.js";

/** Options of the API handler. */
export interface ApiHandlerOptions {
  /** The registry storage the API serves. */
  storage: RegistryStorage;
  /** Where internal errors (500s) are reported with their detail; clients see a generic message. */
  logger?: ApiLogger;
  /**
   * Answer blob GET and HEAD with a 307 to the storage driver's URL when it gives one (config
   * `storage.redirect.disable` turns this off). Default true.
   */
  redirect?: boolean;
  /** Extra headers on every response (config `http.headers`). */
  headers?: Record<string, string[]>;
  /**
   * The path prefix the server strips before calling the handler (config `http.prefix`, e.g.
   * "/registry"); prepended to the paths in Location and Link headers. Default "".
   */
  prefix?: string;
  /**
   * Asked once a request is routed, before its handler runs: who the caller is and whether it may
   * do what the request needs (src/auth provides it). Without it every request is allowed.
   */
  authorize?: AuthorizeHook;
  /**
   * Where the events of successful requests go (push, pull, delete, mount, in distribution's
   * format); the notifier of config.yml's `notifications`. Without one no event is made.
   */
  notifier?: EventPublisher;
  /**
   * Whether the storage allows deletes (config `storage.delete.enabled`); only reported to the UI
   * (`/v2/_berth/tags/`), the storage layer enforces it. Default false.
   */
  deleteEnabled?: boolean;
  /**
   * Called after each manifest GET with the repository, the digest and the tag it was pulled by
   * (retention's pull times; it must not do I/O on the request path).
   */
  recordPull?: (repository: string, digest: string, tag?: string) => void;
}

/** `/v2/`: the API version check. */
const checkVersion: EndpointHandler = async (_context, request) => {
  request.res.writeHead(200, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": 2,
  });
  request.res.end(request.isHead ? undefined : "{}");
};

/** The handler of each method of each endpoint. */
const ENDPOINTS: Readonly<Record<RouteKind, Readonly<Record<string, EndpointHandler>>>> = {
  base: { GET: checkVersion, HEAD: checkVersion },
  catalog: { GET: listCatalog, HEAD: listCatalog },
  tags: { GET: listTags, HEAD: listTags },
  manifest: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  blob: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob },
  uploadStart: { POST: startUpload },
  upload: { GET: uploadStatus, PATCH: patchUpload, PUT: finishUpload, DELETE: cancelUpload },
  referrers: { GET: listReferrers, HEAD: listReferrers },
  tagDetails: { GET: listTagDetails, HEAD: listTagDetails },
  repositoryUsage: { GET: repositoryUsage, HEAD: repositoryUsage },
};

/** What the API has handled: requests received so far, handlers running now. */
export interface ApiActivity {
  started: number;
  running: number;
}

/**
 * The API's request handler; `info` comes from the server (request id, logger). `drain` resolves
 * once no handler is running; `activity` counts requests.
 */
export type ApiHandler = ((
  req: IncomingMessage,
  res: ServerResponse,
  info?: RequestInfo,
) => void) & {
  drain(): Promise<void>;
  activity(): ApiActivity;
};

/**
 * Creates the request handler of the OCI Distribution API. It answers every path under `/v2/`
 * (an unknown one with 404 and the error envelope, an unsupported method with 405) and sends
 * `Docker-Distribution-API-Version: registry/2.0` on every response. It fills in `info`'s handler
 * and repository as it routes.
 */
export function createApiHandler(options: ApiHandlerOptions): ApiHandler {
  const context: ApiContext = {
    storage: options.storage,
    redirect: options.redirect ?? true,
    prefix: (options.prefix ?? "").replace(/\/+$/, ""),
    logger: options.logger,
    notifier: options.notifier,
    deleteEnabled: options.deleteEnabled ?? false,
    recordPull: options.recordPull,
  };
  const extraHeaders = Object.entries(options.headers ?? {});
  const authorize = options.authorize;

  // Handlers still running (an upload closing its writer after its connection was cut, say), and
  // the drains waiting for none to be. A count, not a set of promises: no closure per request.
  let running = 0;
  let started = 0;
  const drained: (() => void)[] = [];
  const finished = (): void => {
    if (--running === 0 && drained.length > 0) for (const resolve of drained.splice(0)) resolve();
  };
  const handle = (
    req: IncomingMessage,
    res: ServerResponse,
    info: RequestInfo = { id: randomUUID(), log: options.logger },
  ): void => {
    started++;
    presetHeader(res, "Docker-Distribution-API-Version", "registry/2.0");
    for (const [name, values] of extraHeaders) res.setHeader(name, values);

    const url = req.url ?? "/";
    const queryStart = url.indexOf("?");
    const path = queryStart === -1 ? url : url.slice(0, queryStart);
    const method = req.method ?? "GET";
    const isHead = method === "HEAD";
    const routed = route(path);
    if (routed !== null) {
      info.handler = HANDLER_NAMES[routed.kind];
      if (routed.name !== "") info.repository = routed.name;
    }
    if (routed === null) {
      writeError(
        res,
        new ApiError("UNSUPPORTED", `no such endpoint: ${path}`, { status: 404 }),
        isHead,
        undefined,
      );
      return;
    }
    const handler = ENDPOINTS[routed.kind][method];
    if (handler === undefined) {
      const allow = ALLOWED_METHODS[routed.kind];
      const error = new ApiError("UNSUPPORTED", `method ${method} not allowed on ${path}`, {
        headers: { Allow: allow },
      });
      writeError(res, error, isHead, undefined);
      return;
    }
    const request: ApiRequest = {
      req,
      res,
      info,
      route: routed,
      query: queryStart === -1 ? null : new URLSearchParams(url.slice(queryStart + 1)),
      isHead,
      caller: OPEN_CALLER,
    };
    running++;
    void serve(context, handler, request, authorize, finished);
  };
  return Object.assign(handle, {
    drain: async () => {
      while (running > 0) await new Promise<void>((resolve) => drained.push(resolve));
    },
    activity: () => ({ started, running }),
  });
}

/**
 * Runs one request's handler (after the authorize hook, when there is one) and answers its
 * failure; `finished` is called once it is over either way.
 */
async function serve(
  context: ApiContext,
  handler: EndpointHandler,
  request: ApiRequest,
  authorize: AuthorizeHook | undefined,
  finished: () => void,
): Promise<void> {
  try {
    if (authorize !== undefined) {
      const { req, route } = request;
      const needs = accessNeeds(route.kind, req.method ?? "GET", route.name);
      const caller = await authorize({ req, kind: route.kind, needs });
      request.caller = caller;
      if (caller.user !== undefined) {
        requestContext(req).user = caller.user;
        request.info.user = caller.user;
      }
    }
    await handler(context, request);
  } catch (error) {
    fail(request, error);
  } finally {
    finished();
  }
}

/** Answers a failed request with its error, unless the response is already under way or unwanted. */
function fail(request: ApiRequest, error: unknown): void {
  const { req, res } = request;
  // Node may have destroyed the request (and let go of its socket) while a handler read its body.
  if (req.socket === null || req.socket.destroyed) {
    // The client left (mid-upload, typically); the storage layer kept what arrived.
    res.destroy();
    return;
  }
  if (res.headersSent) {
    request.info.log?.error({ err: error }, "request failed after the response started");
    res.destroy();
    return;
  }
  // A body left unread (storage failed mid-upload) is not drained: the connection closes instead.
  if (!req.complete) res.shouldKeepAlive = false;
  writeError(res, error, request.isHead, request.info.log);
}
