// What the htpasswd and token modes share at the HTTP edge: reading Basic credentials, the
// caller's address for throttling, and the errors (with their challenges) the API sends.

import type { IncomingMessage } from "node:http";
import { ApiError, type AccessNeed } from "../api/index.js";
import { scopeString } from "./token.js";

/** Credentials of a Basic Authorization header. */
export interface BasicCredentials {
  user: string;
  password: string;
}

/** The Basic credentials of `header`; null when there are none or they are malformed. */
export function parseBasic(header: string | undefined): BasicCredentials | null {
  if (header === undefined || !/^basic /i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The token of a Bearer Authorization header, or undefined. */
export function parseBearer(header: string | undefined): string | undefined {
  if (header === undefined || !/^bearer /i.test(header)) return undefined;
  const token = header.slice(7).trim();
  return token === "" ? undefined : token;
}

/** A quoted-string of an HTTP auth parameter, as Go's %q writes the realm. */
export function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, "\\$&")}"`;
}

/** The address a request came from, for throttling. */
export function remoteAddress(req: IncomingMessage): string | undefined {
  return req.socket.remoteAddress;
}

/** 401 with a challenge. */
export function unauthorized(challenge: string, message = "authentication required"): ApiError {
  return new ApiError("UNAUTHORIZED", message, { headers: { "WWW-Authenticate": challenge } });
}

/** 403: authenticated, but not allowed what the request needs. */
export function denied(needs: readonly AccessNeed[]): ApiError {
  return new ApiError("DENIED", "requested access to the resource is denied", {
    detail: needs.map((need) => ({ Type: need.type, Name: need.name, Action: need.actions })),
  });
}

/** 429 for a throttled login. */
export function throttled(retryAfterSeconds: number): ApiError {
  return new ApiError("TOOMANYREQUESTS", "too many failed logins; try again later", {
    headers: { "Retry-After": String(retryAfterSeconds) },
  });
}

/** The `scope` parameter of a Bearer challenge: every need, space-separated. */
export function scopeParameter(needs: readonly AccessNeed[]): string {
  return needs.map((need) => scopeString(need.type, need.name, need.actions)).join(" ");
}
