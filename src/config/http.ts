// The http section of config.yml: the listening address, the external URL and prefix, TLS, extra
// response headers, the drain timeout, the connection timeouts (`http.timeout`) and the per-client
// limits (`http.limits`, Berth's own).

import { isIP } from "node:net";
import type { ConfigReader, Mapping } from "./reader.js";

/** The TLS options of `http.tls`. */
export interface TlsConfig {
  /** Path of the PEM certificate (chain). */
  certificate: string;
  /** Path of the PEM private key. */
  key: string;
  /** Paths of PEM CA bundles; when given, clients must present a certificate signed by one. */
  clientCAs: string[];
  /** The lowest TLS version accepted (`http.tls.minimumtls`), in Node's spelling. */
  minVersion: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
}

/**
 * `http.timeout`: how long a connection may make no progress. Each is an inactivity limit, never
 * a limit on a whole request, so a large upload on a slow link is not cut while its bytes flow.
 * 0 disables one.
 */
export interface HttpTimeouts {
  /** Request headers must arrive within this, and a body may stall no longer. Default 60s. */
  readMs: number;
  /** A response the client does not read may stall no longer. Default 60s. */
  writeMs: number;
  /** A keep-alive connection with no request in flight is closed after this. Default 65s. */
  idleMs: number;
}

/**
 * `http.limits`: what one client address may hold at once; beyond it, requests are answered 429
 * TOOMANYREQUESTS with Retry-After. 0 disables one. Behind a proxy every client has the proxy's
 * address: set these there instead.
 */
export interface HttpLimits {
  /** Open connections per client address. Default 512. */
  connectionsPerClient: number;
  /** Upload requests with a body in flight (POST, PATCH, PUT of blob uploads). Default 128. */
  uploadsPerClient: number;
}

/** The http section. */
export interface HttpConfig {
  /** `http.addr` as written, `host:port`; an empty host listens on every interface. */
  addr: string;
  /** The host part of `addr` ("" for every interface). */
  hostname: string;
  /** The port part of `addr`; 0 picks a free port. */
  port: number;
  /** `http.host`: the registry's external URL; Location and Link headers become absolute. */
  host: string | undefined;
  /** `http.prefix` without its trailing slash ("" when none): the registry is served below it. */
  prefix: string;
  tls: TlsConfig | undefined;
  /** `http.headers`: added to every response. */
  headers: Record<string, string[]>;
  /** `http.draintimeout`: how long a stopping server waits for requests in flight. Default 10s. */
  drainTimeoutMs: number;
  timeouts: HttpTimeouts;
  limits: HttpLimits;
  /** `http.debug`: the debug server (health and metrics); undefined without `http.debug.addr`. */
  debug: DebugConfig | undefined;
}

/** `http.debug`: a second listener, as distribution's, for operators rather than clients. */
export interface DebugConfig {
  /** `http.debug.addr` as written. */
  addr: string;
  hostname: string;
  port: number;
  /** `http.debug.prometheus`: Prometheus metrics on the debug server. */
  prometheus: { enabled: boolean; path: string };
}

/** Splits `host:port` (`[::1]:5000`, `:5000`); undefined when `addr` is not that. */
export function parseAddress(addr: string): { hostname: string; port: number } | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr.trim());
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const hostname = match[1] ?? match[2] ?? "";
  if (match[1] !== undefined && isIP(hostname) !== 6) return undefined;
  if (match[2] !== undefined && hostname !== "" && !/^[A-Za-z0-9.-]+$/.test(hostname))
    return undefined;
  return { hostname, port };
}

const tlsVersions: Record<string, TlsConfig["minVersion"]> = {
  "tls1.0": "TLSv1",
  "tls1.1": "TLSv1.1",
  "tls1.2": "TLSv1.2",
  "tls1.3": "TLSv1.3",
};

function readTls(reader: ConfigReader, http: Mapping): TlsConfig | undefined {
  const tls = reader.mapping(http.tls, "http.tls");
  const known = ["certificate", "key", "clientcas", "minimumtls", "ciphersuites", "letsencrypt"];
  reader.unknownKeys(tls, "http.tls", known, known);
  const certificate = reader.string(tls.certificate, "http.tls.certificate") ?? "";
  const key = reader.string(tls.key, "http.tls.key") ?? "";
  if (tls.ciphersuites !== undefined) {
    reader.warn("http.tls.ciphersuites", "ignored: Node's default cipher suites are used");
  }
  if (certificate === "" && key === "") {
    if (tls.letsencrypt !== undefined) {
      reader.fail(
        "http.tls.letsencrypt",
        "not supported; give http.tls.certificate and http.tls.key",
      );
    }
    return undefined;
  }
  if (certificate === "") reader.fail("http.tls.certificate", "is required with http.tls.key");
  if (key === "") reader.fail("http.tls.key", "is required with http.tls.certificate");
  const minimum = reader.oneOf(
    tls.minimumtls,
    "http.tls.minimumtls",
    Object.keys(tlsVersions),
    "tls1.2",
  );
  return {
    certificate,
    key,
    clientCAs: reader.stringList(tls.clientcas, "http.tls.clientcas"),
    minVersion: tlsVersions[minimum]!,
  };
}

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function readHeaders(reader: ConfigReader, http: Mapping): Record<string, string[]> {
  const headers = reader.mapping(http.headers, "http.headers");
  const result: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const key = `http.headers.${name}`;
    if (!headerName.test(name)) {
      reader.fail(key, "is not a valid header name");
      continue;
    }
    const values = reader.stringList(parseFlowList(value), key);
    if (values.some((item) => /[\r\n\0]/.test(item))) {
      reader.fail(key, "a header value may not contain line breaks");
      continue;
    }
    result[name] = values;
  }
  return result;
}

/** An environment override of a list arrives as a string such as `[nosniff]`. */
function parseFlowList(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const trimmed = value.trim();
  if (!trimmed.startsWith("[") || !trimmed.endsWith("]")) return value;
  return trimmed
    .slice(1, -1)
    .split(",")
    .map((item) => item.trim().replace(/^(["'])(.*)\1$/, "$2"))
    .filter((item) => item !== "");
}

/** `http.host`: the scheme and authority of an http(s) URL, or undefined. */
function readHost(reader: ConfigReader, http: Mapping): string | undefined {
  const host = reader.string(http.host, "http.host");
  if (host === undefined || host === "") return undefined;
  const url = URL.canParse(host) ? new URL(host) : undefined;
  if (
    url === undefined ||
    (url.protocol !== "http:" && url.protocol !== "https:") ||
    url.search !== ""
  ) {
    reader.fail(
      "http.host",
      `${JSON.stringify(host)} is not an http(s) URL such as https://registry.example.com`,
    );
    return undefined;
  }
  // As in distribution, only the scheme and authority count: paths come from the routes (and
  // http.prefix).
  if (url.pathname !== "/")
    reader.warn("http.host", `the path ${url.pathname} is ignored; use http.prefix`);
  return url.origin;
}

function readTimeouts(reader: ConfigReader, http: Mapping): HttpTimeouts {
  const timeout = reader.mapping(http.timeout, "http.timeout");
  reader.unknownKeys(timeout, "http.timeout", ["read", "write", "idle"]);
  return {
    readMs: reader.duration(timeout.read, "http.timeout.read", 60_000),
    writeMs: reader.duration(timeout.write, "http.timeout.write", 60_000),
    idleMs: reader.duration(timeout.idle, "http.timeout.idle", 65_000),
  };
}

function readLimits(reader: ConfigReader, http: Mapping): HttpLimits {
  const limits = reader.mapping(http.limits, "http.limits");
  reader.unknownKeys(limits, "http.limits", ["connectionsperclient", "uploadsperclient"]);
  return {
    connectionsPerClient: reader.integer(
      limits.connectionsperclient,
      "http.limits.connectionsperclient",
      512,
    ),
    uploadsPerClient: reader.integer(limits.uploadsperclient, "http.limits.uploadsperclient", 128),
  };
}

export function readHttp(reader: ConfigReader, tree: Mapping): HttpConfig {
  const http = reader.mapping(tree.http, "http");
  reader.unknownKeys(
    http,
    "http",
    [
      "addr",
      "net",
      "host",
      "prefix",
      "secret",
      "relativeurls",
      "draintimeout",
      "timeout",
      "limits",
      "tls",
      "headers",
      "debug",
      "http2",
    ],
    ["tls"],
  );
  const addr = reader.string(http.addr, "http.addr") ?? "127.0.0.1:5000";
  const address = parseAddress(addr);
  if (address === undefined) reader.fail("http.addr", `${JSON.stringify(addr)} is not host:port`);
  reader.oneOf(http.net, "http.net", ["tcp"], "tcp");
  const host = readHost(reader, http);

  let prefix = reader.string(http.prefix, "http.prefix") ?? "";
  if (prefix !== "" && (!prefix.startsWith("/") || /[?#\s]/.test(prefix))) {
    reader.fail("http.prefix", `${JSON.stringify(prefix)} must be a path starting with "/"`);
  }
  prefix = prefix.replace(/\/+$/, "");

  if (http.secret !== undefined) reader.warn("http.secret", "not used by Berth, ignored");
  if (http.http2 !== undefined) reader.warn("http.http2", "Berth serves HTTP/1.1 only, ignored");
  reader.boolean(http.relativeurls, "http.relativeurls", false);

  return {
    addr,
    hostname: address?.hostname ?? "127.0.0.1",
    port: address?.port ?? 5000,
    host,
    prefix,
    tls: readTls(reader, http),
    headers: readHeaders(reader, http),
    drainTimeoutMs: reader.duration(http.draintimeout, "http.draintimeout", 10_000),
    timeouts: readTimeouts(reader, http),
    limits: readLimits(reader, http),
    debug: readDebug(reader, http),
  };
}

function readDebug(reader: ConfigReader, http: Mapping): DebugConfig | undefined {
  const debug = reader.mapping(http.debug, "http.debug");
  reader.unknownKeys(debug, "http.debug", ["addr", "prometheus", "tls"]);
  if (debug.tls !== undefined) reader.warn("http.debug.tls", "not supported, ignored");
  const prometheus = reader.mapping(debug.prometheus, "http.debug.prometheus");
  reader.unknownKeys(prometheus, "http.debug.prometheus", ["enabled", "path"]);
  const enabled = reader.boolean(prometheus.enabled, "http.debug.prometheus.enabled", false);
  const path = reader.string(prometheus.path, "http.debug.prometheus.path") || "/metrics";
  if (!path.startsWith("/") || /[?#\s]/.test(path)) {
    reader.fail(
      "http.debug.prometheus.path",
      `${JSON.stringify(path)} must be a path starting with "/"`,
    );
  }
  const addr = reader.string(debug.addr, "http.debug.addr") ?? "";
  if (addr === "") {
    if (enabled) {
      reader.warn(
        "http.debug.prometheus",
        "metrics are served on the debug server only; set http.debug.addr, ignored",
      );
    }
    return undefined;
  }
  const address = parseAddress(addr);
  if (address === undefined) {
    reader.fail("http.debug.addr", `${JSON.stringify(addr)} is not host:port`);
    return undefined;
  }
  return { addr, ...address, prometheus: { enabled, path } };
}
