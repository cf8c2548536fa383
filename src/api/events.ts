// The events the API reports to the notifier, as distribution's notification bridge makes them:
// a manifest pushed, pulled (GET or HEAD) or deleted, a blob pushed (an upload finished), mounted,
// pulled (GET or HEAD) or deleted, a tag deleted. Each is reported once its request succeeded;
// nothing is done when no endpoint is configured.

import type { TLSSocket } from "node:tls";
import {
  BLOB_MEDIA_TYPE,
  manifestReferences,
  type EventAction,
  type EventTarget,
  type Notifier,
} from "../notify/index.js";
import type { ApiContext, ApiRequest } from "./context.js";

/** The notifier as the API uses it. */
export type EventPublisher = Pick<Notifier, "publish" | "includeReferences">;

/** The absolute URL of `/v2/<repository>/<kind>/<digest>` as this request reached the registry. */
function targetUrl(context: ApiContext, request: ApiRequest, kind: string, digest: string): string {
  const path = `/v2/${request.route.name}/${kind}/${digest}`;
  // With http.host the prefix is already absolute.
  if (/^https?:\/\//.test(context.prefix)) return `${context.prefix}${path}`;
  const scheme = (request.req.socket as Partial<TLSSocket>).encrypted === true ? "https" : "http";
  return `${scheme}://${request.req.headers.host ?? "localhost"}${context.prefix}${path}`;
}

function publish(
  context: ApiContext,
  request: ApiRequest,
  action: EventAction,
  target: EventTarget,
): void {
  const { req, info } = request;
  const { remoteAddress, remotePort } = req.socket;
  const addr =
    remoteAddress === undefined
      ? undefined
      : `${remoteAddress.includes(":") ? `[${remoteAddress}]` : remoteAddress}:${remotePort}`;
  context.notifier!.publish({
    action,
    target,
    request: {
      id: info.id,
      ...(addr === undefined ? {} : { addr }),
      ...(req.headers.host === undefined ? {} : { host: req.headers.host }),
      method: req.method ?? "GET",
      useragent: req.headers["user-agent"] ?? "",
    },
    actor: info.user === undefined ? {} : { name: info.user },
  });
}

/** A manifest pushed or pulled; `tag` when the request named it by tag. */
export function manifestEvent(
  context: ApiContext,
  request: ApiRequest,
  action: "push" | "pull",
  manifest: { digest: string; mediaType: string; content: Uint8Array },
  tag: string | undefined,
): void {
  if (context.notifier === undefined) return;
  const size = manifest.content.byteLength;
  publish(context, request, action, {
    mediaType: manifest.mediaType,
    size,
    digest: manifest.digest,
    length: size,
    repository: request.route.name,
    url: targetUrl(context, request, "manifests", manifest.digest),
    ...(tag === undefined ? {} : { tag }),
    ...(context.notifier.includeReferences
      ? { references: manifestReferences(manifest.content) }
      : {}),
  });
}

/** A blob pushed, pulled or mounted (`from`: the repository it was mounted from, when named). */
export function blobEvent(
  context: ApiContext,
  request: ApiRequest,
  action: "push" | "pull" | "mount",
  blob: { digest: string; size?: number },
  from?: string,
): void {
  if (context.notifier === undefined) return;
  publish(context, request, action, {
    mediaType: BLOB_MEDIA_TYPE,
    ...(blob.size === undefined ? {} : { size: blob.size }),
    digest: blob.digest,
    ...(blob.size === undefined ? {} : { length: blob.size }),
    repository: request.route.name,
    url: targetUrl(context, request, "blobs", blob.digest),
    ...(from === undefined ? {} : { fromRepository: from }),
  });
}

/** A manifest or blob deleted by digest, or a tag deleted. */
export function deleteEvent(
  context: ApiContext,
  request: ApiRequest,
  deleted: { digest: string } | { tag: string },
): void {
  if (context.notifier === undefined) return;
  publish(context, request, "delete", { ...deleted, repository: request.route.name });
}
