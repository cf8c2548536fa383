// Formatting for the UI: sizes, times, digests, platforms, and the UI's routes (hash URLs, so the
// server serves one page and nothing else).

/** Bytes in SI units, as docker prints image sizes. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return "unknown";
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** A date as the reader's locale writes it, to the minute. */
export function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** `sha256:0123456789ab` (12 hex digits), as docker shortens image ids. */
export function shortDigest(digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return hex === undefined ? digest : `${algorithm}:${hex.slice(0, 12)}`;
}

import type { Platform } from "../../api/berth-types.js";

export type { Platform };

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

/** The hash URLs of the UI's pages. Names keep their slashes; a reference is the last segment. */
export const href = {
  catalog: (query = "", page = 1): string => {
    const params = new URLSearchParams();
    if (query !== "") params.set("q", query);
    if (page > 1) params.set("page", String(page));
    const text = params.toString();
    return text === "" ? "#/" : `#/?${text}`;
  },
  repository: (name: string): string => `#/r/${name}`,
  manifest: (name: string, reference: string): string => `#/m/${name}/${reference}`,
  login: (back: string): string => `#/login?back=${encodeURIComponent(back)}`,
};

export type Route =
  | { page: "catalog"; query: string; pageNumber: number }
  | { page: "repository"; name: string }
  | { page: "manifest"; name: string; reference: string }
  | { page: "login"; back: string }
  | { page: "missing" };

/** The route of a location hash. */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "") || "/";
  const [path = "/", queryText = ""] = raw.split("?", 2);
  const query = new URLSearchParams(queryText);
  if (path === "/" || path === "") {
    const pageNumber = Math.max(1, Number.parseInt(query.get("page") ?? "1", 10) || 1);
    return { page: "catalog", query: query.get("q") ?? "", pageNumber };
  }
  if (path === "/login") return { page: "login", back: query.get("back") ?? "#/" };
  if (path.startsWith("/r/") && path.length > 3) return { page: "repository", name: path.slice(3) };
  if (path.startsWith("/m/")) {
    const rest = path.slice(3);
    const slash = rest.lastIndexOf("/");
    if (slash > 0 && slash < rest.length - 1) {
      return { page: "manifest", name: rest.slice(0, slash), reference: rest.slice(slash + 1) };
    }
  }
  return { page: "missing" };
}
