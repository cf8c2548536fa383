// The web UI's server side: the single-page app that scripts/build.mjs bundled into dist/ui
// (index.html and content-hashed assets), loaded into memory once at start (some tens of KiB,
// gzipped ahead) and served at `ui.path` below `http.prefix`. Assets are immutable under their
// hashed names; index.html is revalidated on every load. The app itself talks only to the
// registry's API (`/v2/`), the token endpoint and Berth's `/v2/_berth/` extension.

import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzip } from "node:zlib";

/** Where the build puts the bundle: dist/ui, beside dist/src (this file is dist/src/ui/index.js). */
export const UI_DIRECTORY = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "ui");

/** Options of the UI handler. */
export interface UiOptions {
  /** The path the UI is served at, below the prefix: "/" or "/ui" (no trailing slash). */
  path: string;
  /** The registry's `http.prefix` ("" when none): the app's API calls go to `<prefix>/v2/`. */
  prefix: string;
  /** The built app; default dist/ui. */
  directory?: string;
}

/** Serves the web UI. */
export interface UiHandler {
  /** Whether `path` (below the prefix, without query) is the UI's. */
  handles(path: string): boolean;
  /** Answers a request for one of the UI's paths. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): void;
}

/** The built UI is missing or incomplete. */
export class UiNotBuiltError extends Error {
  constructor(directory: string, reason: string) {
    super(`ui.enabled: the web UI is not built in ${directory} (${reason}); run npm run build`);
    this.name = "UiNotBuiltError";
  }
}

interface Asset {
  type: string;
  body: Buffer;
  gzipped: Buffer;
  etag: string;
  cacheControl: string;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".woff2": "font/woff2",
};
const IMMUTABLE = "public, max-age=31536000, immutable";
const SECURITY_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  // The app's own script and styles only; API and token requests may go to the token realm,
  // which can be another origin.
  "Content-Security-Policy":
    "default-src 'self'; img-src 'self' data:; connect-src 'self' http: https:; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

async function asset(type: string, body: Buffer, cacheControl: string): Promise<Asset> {
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
  return { type, body, gzipped: await promisify(gzip)(body), etag, cacheControl };
}

/** The index page with the app's settings: where the API is. JSON in a non-executed script. */
function withSettings(html: string, prefix: string): string {
  const settings = JSON.stringify({ api: prefix }).replace(/</g, "\\u003c");
  const tag = `<script type="application/json" id="berth-settings">${settings}</script>`;
  return html.replace("<!--berth-settings-->", tag);
}

/** Loads the built UI into memory and returns its handler. Rejects with UiNotBuiltError. */
export async function createUiHandler(options: UiOptions): Promise<UiHandler> {
  const directory = options.directory ?? UI_DIRECTORY;
  let html: string;
  let names: string[];
  try {
    html = await readFile(join(directory, "index.html"), "utf8");
    names = await readdir(join(directory, "assets"));
  } catch (error) {
    throw new UiNotBuiltError(directory, (error as Error).message);
  }
  const index = await asset(
    TYPES[".html"]!,
    Buffer.from(withSettings(html, options.prefix)),
    "no-cache",
  );
  const assets = new Map<string, Asset>();
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    assets.set(name, await asset(type, await readFile(join(directory, "assets", name)), IMMUTABLE));
  }

  const base = options.path === "/" ? "" : options.path;
  const assetsPrefix = `${base}/assets/`;
  const lookup = (path: string): Asset | "redirect" | undefined => {
    if (path === `${base}/` || path === `${base}/index.html`) return index;
    if (base !== "" && path === base) return "redirect";
    if (path.startsWith(assetsPrefix)) return assets.get(path.slice(assetsPrefix.length));
    return undefined;
  };

  return {
    // With the root path, only `/`, `/index.html` and `/assets/...`: every other path stays the
    // server's (the API's 404 envelope, the token endpoint).
    handles: (path) =>
      path === `${base}/` ||
      path === `${base}/index.html` ||
      path.startsWith(assetsPrefix) ||
      (base !== "" && path === base),
    handle: (req, res, path) => {
      const method = req.method ?? "GET";
      if (method !== "GET" && method !== "HEAD") {
        res.writeHead(405, { Allow: "GET, HEAD", "Content-Length": 0 });
        res.end();
        return;
      }
      const found = lookup(path);
      if (found === "redirect") {
        res.writeHead(301, { Location: `${options.prefix}${base}/`, "Content-Length": 0 });
        res.end();
        return;
      }
      if (found === undefined) {
        const text = "not found\n";
        res.writeHead(404, {
          "Content-Type": "text/plain; charset=utf-8",
          "Content-Length": text.length,
          "Cache-Control": "no-cache",
        });
        res.end(method === "HEAD" ? undefined : text);
        return;
      }
      send(req, res, found, method === "HEAD");
    },
  };
}

function send(req: IncomingMessage, res: ServerResponse, asset: Asset, isHead: boolean): void {
  const headers: Record<string, string | number> = {
    ...SECURITY_HEADERS,
    "Content-Type": asset.type,
    "Cache-Control": asset.cacheControl,
    ETag: asset.etag,
    Vary: "Accept-Encoding",
  };
  if (req.headers["if-none-match"] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const gzipped = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  const body = gzipped ? asset.gzipped : asset.body;
  if (gzipped) headers["Content-Encoding"] = "gzip";
  headers["Content-Length"] = body.length;
  res.writeHead(200, headers);
  res.end(isHead ? undefined : body);
}
