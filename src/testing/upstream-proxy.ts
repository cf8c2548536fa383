// Test support: an HTTP proxy in front of a real upstream registry (docker-registry) that counts
// the requests it forwards, and can play what real upstreams do to a pull-through cache: Docker
// Hub's bearer-token challenge (401 with WWW-Authenticate, a token endpoint taking Basic
// credentials, tokens that expire), rate limiting (429 with Retry-After), a connection cut
// midway through a body, and being down.

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";

/** What to do with one request instead of forwarding it whole. */
export type Interference = "429" | "cut" | "down" | undefined;

export interface UpstreamProxyOptions {
  /** Require Bearer tokens from `/token`, issued for these Basic credentials. */
  bearer?: { username: string; password: string; expiresInSeconds?: number };
  /** Decides, per request, to answer 429, cut the body midway or drop the connection. */
  interfere?: (method: string, path: string) => Interference;
}

export interface UpstreamProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Requests forwarded (or answered), as `<METHOD> <path>`, in order. */
  readonly requests: string[];
  /** Tokens issued by `/token`. */
  readonly tokensIssued: () => number;
  /** How many requests were `<method> <path>`. */
  count(method: string, path: string): number;
  stop(): Promise<void>;
}

export async function startUpstreamProxy(
  target: string,
  options: UpstreamProxyOptions = {},
): Promise<UpstreamProxy> {
  const requests: string[] = [];
  const tokens = new Map<string, number>();
  let issued = 0;
  const targetUrl = new URL(target);
  let self = "";

  const tokenEndpoint = (req: IncomingMessage, res: ServerResponse): void => {
    const bearer = options.bearer!;
    const expected = `Basic ${Buffer.from(`${bearer.username}:${bearer.password}`).toString("base64")}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "Content-Type": "application/json" });
      res.end('{"details":"incorrect username or password"}');
      return;
    }
    const token = randomBytes(16).toString("hex");
    const lifetime = bearer.expiresInSeconds ?? 300;
    tokens.set(token, Date.now() + lifetime * 1000);
    issued++;
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ token, expires_in: lifetime }));
  };

  const authorized = (req: IncomingMessage): boolean => {
    const header = req.headers.authorization ?? "";
    const expiry = header.startsWith("Bearer ") ? tokens.get(header.slice(7)) : undefined;
    return expiry !== undefined && expiry > Date.now();
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const method = req.method ?? "GET";
    if (options.bearer !== undefined && path === "/token") return tokenEndpoint(req, res);
    requests.push(`${method} ${path}`);
    const interference = options.interfere?.(method, path);
    if (interference === "down") return void req.socket.destroy();
    if (interference === "429") {
      res.writeHead(429, { "Retry-After": "30", "Content-Type": "application/json" });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return;
    }
    if (options.bearer !== undefined && !authorized(req)) {
      const name = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(path)?.[1];
      const scope = name === undefined ? "" : `,scope="repository:${name}:pull"`;
      res.writeHead(401, {
        "WWW-Authenticate": `Bearer realm="${self}/token",service="test-upstream"${scope}`,
        "Content-Type": "application/json",
      });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const headers = { ...req.headers, host: targetUrl.host };
    delete headers.authorization;
    const forward = httpRequest(
      { host: targetUrl.hostname, port: targetUrl.port, method, path: req.url, headers },
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        if (interference !== "cut") return void upstream.pipe(res);
        // Half the body (at least one chunk), then the connection drops.
        const length = Number(upstream.headers["content-length"] ?? 0);
        let sent = 0;
        upstream.on("data", (chunk: Buffer) => {
          if (sent >= length / 2) {
            upstream.destroy();
            res.destroy();
            return;
          }
          sent += chunk.length;
          res.write(chunk);
        });
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  self = `http://127.0.0.1:${address.port}`;
  return {
    url: self,
    requests,
    tokensIssued: () => issued,
    count: (method, path) => requests.filter((line) => line === `${method} ${path}`).length,
    stop: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
