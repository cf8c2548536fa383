// The API's side of authorization: what each endpoint needs (distribution's access records: a
// resource and the actions on it), the `authorize` hook the API calls once a request is routed and
// before its handler runs, and the caller the hook answers with. Who the caller is and what it may
// do is src/auth's business; the API only states its needs and asks.

import type { IncomingMessage } from "node:http";
import type { RouteKind } from "./routes.js";

/** An action on a repository, as the token specification names them. */
export type Action = "pull" | "push" | "delete";

/**
 * One thing a request needs: `actions` on a resource, as in the Docker token specification's
 * scopes (`repository:team/app:pull,push`, `registry:catalog:*`).
 */
export interface AccessNeed {
  type: "repository" | "registry";
  name: string;
  actions: readonly string[];
}

/** Who made a request, as the authorize hook found, and what else it may do. */
export interface Caller {
  /** The authenticated user name; undefined for an anonymous caller. */
  readonly user: string | undefined;
  /** Whether the caller may do `action` on repository `name` (a mount's source). */
  may(name: string, action: Action): boolean;
  /** Whether `_catalog` shows repository `name` to the caller. */
  lists(name: string): boolean;
  /**
   * False when some repositories are closed to the caller: a mount without `from` (the registry
   * looking for the blob anywhere) is then not attempted.
   */
  readonly unrestricted: boolean;
}

/** A caller when no authorization is configured: anonymous, allowed everything. */
export const OPEN_CALLER: Caller = {
  user: undefined,
  may: () => true,
  lists: () => true,
  unrestricted: true,
};

/** What the authorize hook is told about a request. */
export interface AccessRequest {
  readonly req: IncomingMessage;
  readonly kind: RouteKind;
  /** What the request needs; empty for `/v2/` (authentication alone). */
  readonly needs: readonly AccessNeed[];
}

/**
 * Called for every routed request before its handler. Resolves with the caller, or rejects with
 * an ApiError (UNAUTHORIZED with its WWW-Authenticate challenge, DENIED, TOOMANYREQUESTS) that is
 * sent as the response.
 */
export type AuthorizeHook = (request: AccessRequest) => Promise<Caller>;

const PULL = ["pull"] as const;
const PUSH = ["pull", "push"] as const;
const DELETE = ["delete"] as const;

/**
 * What a request needs, as distribution's handlers ask: reads need pull, writes (manifest PUT,
 * every upload request) pull and push, deletes of manifests and blobs delete, the catalog
 * `registry:catalog:*`. Cancelling an upload is part of pushing, so it needs push, not delete.
 */
export function accessNeeds(kind: RouteKind, method: string, name: string): AccessNeed[] {
  const repository = (actions: readonly string[]): AccessNeed[] => [
    { type: "repository", name, actions },
  ];
  switch (kind) {
    case "base":
      return [];
    case "catalog":
      return [{ type: "registry", name: "catalog", actions: ["*"] }];
    case "tags":
    case "referrers":
    case "tagDetails":
    case "repositoryUsage":
      return repository(PULL);
    case "manifest":
    case "blob":
      if (method === "DELETE") return repository(DELETE);
      return repository(method === "PUT" ? PUSH : PULL);
    case "uploadStart":
    case "upload":
      return repository(PUSH);
  }
}

/** The per-request state other layers read once the API is done: the access log's user. */
export interface RequestContext {
  /** The authenticated user, set once the authorize hook has accepted the request. */
  user?: string;
}

const contexts = new WeakMap<IncomingMessage, RequestContext>();

/** The context of `req`, created on first use. */
export function requestContext(req: IncomingMessage): RequestContext {
  let context = contexts.get(req);
  if (context === undefined) {
    context = {};
    contexts.set(req, context);
  }
  return context;
}
