// The debug server of `http.debug.addr`, as distribution's: a second listener for operators, with
// Prometheus metrics at `http.debug.prometheus.path` (when enabled) and the health status at
// /debug/health. Clients of the registry never see it: the main port serves neither.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { DebugConfig } from "../config/index.js";
import type { MetricsRegistry } from "../metrics/index.js";
import { healthPath, type HealthCheck } from "./health.js";
import { listen, localUrl } from "./listen.js";

/** A running debug server. */
export interface DebugServer {
  /** Where it answers, such as `http://127.0.0.1:5001`. */
  readonly url: string;
  close(): Promise<void>;
}

/** What the debug server serves. */
export interface DebugContent {
  health: HealthCheck;
  /** Served at `config.prometheus.path`; undefined when metrics are off. */
  metrics: MetricsRegistry | undefined;
}

function sendText(res: ServerResponse, status: number, text: string, type: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function scrape(metrics: MetricsRegistry, req: IncomingMessage, res: ServerResponse) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-length": 0 }).end();
    return;
  }
  try {
    const text = await metrics.scrape();
    res.writeHead(200, {
      "content-type": metrics.contentType,
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : text);
  } catch {
    sendText(res, 500, "collecting the metrics failed\n", "text/plain; charset=utf-8");
  }
}

/** Starts the debug server on `config.addr`; rejects with a ConfigError on http.debug.addr. */
export async function startDebugServer(
  config: DebugConfig,
  content: DebugContent,
): Promise<DebugServer> {
  const metricsPath = config.prometheus.path;
  const server = createServer({ keepAlive: true }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === healthPath) return void content.health.respond(req.method, res);
    if (content.metrics !== undefined && path === metricsPath) {
      return void scrape(content.metrics, req, res);
    }
    sendText(res, 404, "404 page not found\n", "text/plain; charset=utf-8");
  });
  await listen(server, config, "http.debug.addr");
  server.unref();
  return {
    url: localUrl(server, config.hostname),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
