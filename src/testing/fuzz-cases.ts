// Test support: malformed requests for the fuzz test (src/server/fuzz.test.ts) and its long version
// (`npm run fuzz`), drawn from a seeded generator so a run is reproducible from its seed. Each case
// is either a request Node's HTTP client can send (odd names, digests, tags, ranges, manifests,
// queries, methods, headers, path traversal, upload sessions used wrongly) or raw bytes written to
// a socket (what Node's HTTP parser itself rejects: bad request lines, header overflow, broken
// chunking). Traversal cases aim at `sentinel/`, a directory beside the storage root.

import { createHash } from "node:crypto";

/** A request sent with Node's HTTP client. */
export interface HttpCase {
  kind: "http";
  /** The generator that made it and what it varies, for a failure message. */
  label: string;
  method: string;
  /**
   * The path and query; a function when the case needs a fresh upload session of the seeded
   * repository: it gets the session's Location (path and query) and returns what to request.
   */
  path: string | ((location: string) => string);
  headers: Record<string, string>;
  body?: Buffer;
}

/** Bytes written to a fresh connection, which is then half-closed. */
export interface RawCase {
  kind: "raw";
  label: string;
  bytes: Buffer;
  /** The first request is a HEAD: an error answer has no body. */
  head?: boolean;
  /** Only the end of the stream completes the request (it is half-closed at once). */
  incomplete?: boolean;
}

export type FuzzCase = HttpCase | RawCase;

/** What the registry holds before the fuzzing starts (pushed by the runner). */
export interface FuzzSeed {
  /** The repository with one tagged image. */
  repository: string;
  tag: string;
  layer: Buffer;
  layerDigest: string;
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

function sha256(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The image the runner pushes first: one layer, a config, a manifest tagged `latest`. */
export function fuzzSeed(): FuzzSeed {
  const layer = Buffer.from("a layer for the fuzz test\n".repeat(40));
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux" }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        {
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: sha256(layer),
          size: layer.length,
        },
      ],
    }),
  );
  return {
    repository: "fuzz/base",
    tag: "latest",
    layer,
    layerDigest: sha256(layer),
    config,
    configDigest: sha256(config),
    manifest,
    manifestDigest: sha256(manifest),
  };
}

/** A small, fast, seedable generator (mulberry32): the same seed gives the same cases. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** `length` characters drawn from `alphabet`. */
  text(alphabet: string, length: number): string {
    let out = "";
    for (let i = 0; i < length; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }
}

const HEX = "0123456789abcdef";
const NASTY = [
  "A", "Z", "a", "0", "-", "_", ".", "..", "/", "//", "\\", "%2e", "%2E%2e", "%2f", "%2F", "%5c",
  "%00", "%ff", "%c3%a9", "%20", "%0a", "~", ":", ";", "@", "!", "$", "'", "(", "*", "+", ",", "=",
  "%25", "%252e", "_uploads", "_layers", "_manifests", "sha256:", "é",
]; // prettier-ignore

/** Characters Node's client refuses in a path are percent-encoded; the rest go as they are. */
function pathSafe(text: string): string {
  return Buffer.from(text, "utf8")
    .toString("latin1")
    .replace(/[^\x21-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function badName(r: Random): string {
  const fixed = [
    "",
    "UPPER/case",
    "a//b",
    "a/",
    "/a",
    "-a",
    "a-",
    "a__b___c",
    "a..b",
    "..",
    "../..",
    "a/../b",
    "_uploads",
    "a/_layers",
    "x".repeat(256),
    `${"a/".repeat(200)}a`,
    "a%2fb",
    "%2e%2e/%2e%2e/sentinel",
    "fuzz/base/..",
    "a b",
    "ünï/cödé",
    "a\\b",
    "fuzz/base%00",
  ];
  if (r.chance(0.5)) return r.pick(fixed);
  let out = "";
  const parts = 1 + r.int(8);
  for (let i = 0; i < parts; i++)
    out += r.pick(NASTY) + (r.chance(0.5) ? r.text("abcxyz09", 3) : "");
  return out;
}

function badDigest(r: Random, seed: FuzzSeed): string {
  const hex = createHash("sha256").update(String(r.next())).digest("hex");
  const fixed = [
    "",
    "sha256",
    "sha256:",
    "sha256:abc",
    `sha256:${"g".repeat(64)}`,
    `sha256:${hex.toUpperCase()}`,
    `sha256:${hex}0`,
    `sha256:${hex.slice(1)}`,
    `sha512:${hex}`,
    `sha512:${hex}${hex}`,
    `md5:${hex.slice(0, 32)}`,
    `SHA256:${hex}`,
    `sha256%3A${hex}`,
    `sha256:${hex}/../../..`,
    `sha256:..%2f..%2f${hex.slice(6)}`,
    `sha256+b64u:${hex}`,
    `a:b`,
    "::",
    `sha256:${hex.repeat(40)}`,
    `${seed.layerDigest}%00`,
    `${seed.layerDigest} `,
    `sha256:${hex}`,
  ];
  if (r.chance(0.6)) return pathSafe(r.pick(fixed));
  return pathSafe(r.pick(["sha256:", "sha384:", "x:", ""]) + r.text(`${HEX}g.:/%-`, r.int(80)));
}

function badTag(r: Random): string {
  const fixed = [
    "-lead",
    ".lead",
    "a".repeat(129),
    "tag%00",
    "tag%2f..",
    "..",
    "%2e%2e%2f%2e%2e%2fsentinel",
    "t:a:g",
    "tag@sha256",
    "ta g",
    "tàg",
    "_",
  ];
  return pathSafe(r.chance(0.6) ? r.pick(fixed) : r.text("aZ9_.-:%@~!", 1 + r.int(140)));
}

function traversal(r: Random): string {
  const up = "../".repeat(1 + r.int(10));
  const encoded = r.pick(["%2e%2e%2f", "..%2f", "%2e%2e/", "..\\", "%252e%252e%252f", "....//"]);
  return r.chance(0.5)
    ? `${up}sentinel/written`
    : `${encoded.repeat(1 + r.int(10))}sentinel${r.pick(["", "%2fwritten", "/written"])}`;
}

const MANIFEST_TYPES = [
  OCI_MANIFEST,
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  `${OCI_MANIFEST}; charset=utf-8`,
  "application/json",
  "text/plain",
  "",
  "a/b/c",
  "application/vnd.oci.image.manifest.v1+json, text/plain",
];

/** A body that is not a manifest Berth should store: broken, hostile or inconsistent JSON. */
function badManifest(r: Random, seed: FuzzSeed): Buffer {
  const valid = JSON.parse(seed.manifest.toString()) as Record<string, unknown>;
  const depth = 10 + r.int(200_000);
  const variants: (() => string | Buffer)[] = [
    () => r.bytes(r.int(2048)),
    () => seed.manifest.subarray(0, r.int(seed.manifest.length)),
    () => "[".repeat(depth) + "]".repeat(r.chance(0.5) ? depth : 0),
    () => `{"a":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`,
    () => JSON.stringify({ ...valid, schemaVersion: r.pick([1, 3, -1, "2", null, 2.5]) }),
    () => JSON.stringify({ ...valid, mediaType: r.pick(MANIFEST_TYPES) }),
    () => JSON.stringify({ ...valid, layers: [{ mediaType: "x", digest: badDigest(r, seed) }] }),
    () =>
      JSON.stringify({
        ...valid,
        layers: [{ mediaType: "x", digest: sha256(String(r.next())), size: 12 }],
      }),
    () => JSON.stringify({ ...valid, config: { digest: seed.configDigest, size: -1 } }),
    () => JSON.stringify({ ...valid, config: { digest: seed.configDigest, size: "12" } }),
    () => JSON.stringify({ ...valid, layers: "nope" }),
    () => JSON.stringify({ ...valid, layers: Array(5000).fill({}) }),
    () => JSON.stringify({ ...valid, subject: { digest: badDigest(r, seed), size: 1 } }),
    () => JSON.stringify({ ...valid, annotations: { [r.text("ab", 5)]: 1 } }),
    () => JSON.stringify({ manifests: [{ digest: sha256("x"), size: 1 }], schemaVersion: 2 }),
    () => `{"schemaVersion":2,"schemaVersion":2,"__proto__":{"polluted":true},"layers":[]}`,
    () => `\ufeff${seed.manifest.toString()}`,
    () => `${seed.manifest.toString()}garbage`,
    () => Buffer.concat([seed.manifest.subarray(0, 20), Buffer.from([0xff, 0xfe, 0xc3]), seed.manifest.subarray(20)]), // prettier-ignore
    () => `{"s":"${"\\u0000".repeat(r.int(10_000))}"}`,
    () => `[${"1e999999,".repeat(r.int(10_000))}1]`,
    () => seed.manifest.toString().replace('"schemaVersion":2', '"schemaVersion":2e400'),
    () => "null",
    () => "",
    () => `{"schemaVersion":2,"layers":[${'"x",'.repeat(r.int(100_000))}"x"]}`,
  ];
  const body = r.pick(variants)();
  return typeof body === "string" ? Buffer.from(body) : body;
}

const RANGES = [
  "bytes=abc",
  "bytes=5-1",
  "bytes=-",
  "bytes=--1",
  "bytes=0-99999999999999999999999",
  "bytes=99999999-",
  "bytes=0-1,2-3",
  "items=0-1",
  "bytes=-0",
  "bytes= 0 - 1",
  "bytes=-99999999999999999999",
  "bytes=1e3-2e3",
  "bytes=0x10-",
  "bytes=",
  "bytes=0-0,-1",
  `bytes=${"0-1,".repeat(500)}0-1`,
];
const CONTENT_RANGES = [
  "0-",
  "abc",
  "5-10",
  "0-999999999999999999999",
  "-1-5",
  "bytes 0-5/6",
  "1-0",
  "0-0",
  "00-03",
  "0x0-0x3",
  "3-3",
  "",
];

/** A path of the API where `name`, `ref` and `digest` go. */
function route(r: Random, name: string, reference: string): { method: string; path: string } {
  return r.pick([
    { method: "GET", path: `/v2/${name}/tags/list` },
    { method: "GET", path: `/v2/${name}/manifests/${reference}` },
    { method: "HEAD", path: `/v2/${name}/manifests/${reference}` },
    { method: "DELETE", path: `/v2/${name}/manifests/${reference}` },
    { method: "GET", path: `/v2/${name}/blobs/${reference}` },
    { method: "HEAD", path: `/v2/${name}/blobs/${reference}` },
    { method: "DELETE", path: `/v2/${name}/blobs/${reference}` },
    { method: "POST", path: `/v2/${name}/blobs/uploads/` },
    { method: "GET", path: `/v2/${name}/referrers/${reference}` },
    { method: "PUT", path: `/v2/${name}/manifests/${reference}` },
  ]);
}

const METHODS = [
  "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "MKCOL",
  "COPY", "MOVE", "LOCK", "PURGE", "SEARCH", "REPORT", "M-SEARCH", "FOO", "get", "BREW",
]; // prettier-ignore

type Generator = (r: Random, seed: FuzzSeed) => FuzzCase;

function http(
  label: string,
  method: string,
  path: HttpCase["path"],
  headers: Record<string, string> = {},
  body?: Buffer,
): HttpCase {
  // prettier-ignore
  return { kind: "http", label, method, path, headers, ...(body ? { body } : {}) };
}

function withQuery(location: string, query: string): string {
  return location + (location.includes("?") ? "&" : "?") + query;
}

const GENERATORS: Record<string, Generator> = {
  name: (r, s) => {
    const name = pathSafe(badName(r));
    const { method, path } = route(r, name, r.pick([s.tag, s.layerDigest, s.manifestDigest]));
    return http(`bad repository name`, method, path);
  },
  digest: (r, s) => {
    const digest = badDigest(r, s);
    const repo = s.repository;
    if (r.chance(0.2))
      return http(
        "bad digest finishing an upload",
        "PUT",
        (l) => withQuery(l, `digest=${digest}`),
        { "Content-Type": "application/octet-stream" },
        s.layer,
      );
    if (r.chance(0.1))
      return http(
        "bad digest in a monolithic POST",
        "POST",
        `/v2/${repo}/blobs/uploads/?digest=${digest}`,
        { "Content-Type": "application/octet-stream" },
        Buffer.from("monolithic"),
      );
    if (r.chance(0.1))
      return http("bad digest to mount", "POST", `/v2/${repo}/blobs/uploads/?mount=${digest}&from=${repo}`); // prettier-ignore
    const { method, path } = route(r, repo, digest);
    return http("bad digest", method, path);
  },
  tag: (r, s) => {
    const tag = badTag(r);
    const method = r.pick(["GET", "HEAD", "PUT", "DELETE"]);
    const body = method === "PUT" ? s.manifest : undefined;
    return http("bad tag", method, `/v2/${s.repository}/manifests/${tag}`, { "Content-Type": OCI_MANIFEST }, body); // prettier-ignore
  },
  range: (r, s) => {
    if (r.chance(0.5)) {
      const method = r.pick(["GET", "HEAD"]);
      return http("bad Range", method, `/v2/${s.repository}/blobs/${s.layerDigest}`, { Range: r.pick(RANGES) }); // prettier-ignore
    }
    const range = r.pick(CONTENT_RANGES);
    const body = r.bytes(r.int(64));
    const method = r.pick(["PATCH", "PATCH", "PUT"]);
    const path = method === "PUT" ? (l: string) => withQuery(l, `digest=${sha256(body)}`) : (l: string) => l; // prettier-ignore
    return http(`bad Content-Range ${JSON.stringify(range)}`, method, path, { "Content-Range": range, "Content-Type": "application/octet-stream" }, body); // prettier-ignore
  },
  manifest: (r, s) => {
    const body = badManifest(r, s);
    const reference = r.chance(0.3) ? sha256(r.chance(0.5) ? body : "other") : `t${r.int(50)}`;
    const type = r.pick(MANIFEST_TYPES);
    return http(`bad manifest (${body.length} bytes, ${JSON.stringify(type)})`, "PUT", `/v2/${s.repository}/manifests/${reference}`, type ? { "Content-Type": type } : {}, body); // prettier-ignore
  },
  query: (r, s) => {
    const value = pathSafe(
      r.pick([
        "-1",
        "abc",
        "1e3",
        "99999999999999999999",
        "",
        "0",
        "1.5",
        "%zz",
        "%",
        "NaN",
        "0x10",
      ]),
    );
    const last = pathSafe(r.pick(["", "%zz", "../..", "z".repeat(300), "a%00", s.repository]));
    const path = r.pick([
      `/v2/_catalog?n=${value}`,
      `/v2/_catalog?n=1&n=${value}&last=${last}`,
      `/v2/${s.repository}/tags/list?n=${value}`,
      `/v2/${s.repository}/tags/list?last=${last}&n=${value}`,
      `/v2/${s.repository}/referrers/${s.manifestDigest}?artifactType=${last}`,
      `/v2/${s.repository}/blobs/uploads/?mount=${s.layerDigest}&from=${last}`,
      `/v2/${s.repository}/blobs/uploads/?mount=${s.layerDigest}&from=${traversal(r)}`,
      `/v2/${s.repository}/tags/list?%zz=%zz&&&=`,
      `/v2/${s.repository}/manifests/${s.tag}?${"a=b&".repeat(2000)}`,
    ]);
    return http("bad query", path.includes("uploads") ? "POST" : "GET", path);
  },
  method: (r, s) => {
    const { path } = route(r, s.repository, r.pick([s.tag, s.layerDigest, s.manifestDigest]));
    const target = r.pick([path, "/v2/", "/v2/_catalog", "/", "/v2", "/v3/", "*"]);
    return http("odd method", r.pick(METHODS), target);
  },
  header: (r, s) => {
    const headers: Record<string, string> = {};
    const pairs: [string, string][] = [
      ["Content-Type", r.pick(MANIFEST_TYPES.concat(["x/y;;;="]))],
      ["Accept", r.pick(["*/*;q=abc", "a/b,".repeat(500), "", ",,,", MANIFEST_TYPES.join(",")])],
      ["Authorization", r.pick(["Bearer", "Bearer a.b.c", "Basic !!!", "Basic " + "A".repeat(4000), "Digest x"])], // prettier-ignore
      ["Docker-Content-Digest", badDigest(r, s)],
      ["Host", r.pick(["", "a".repeat(1000), "[::1", "evil.example:99999"])],
      ["X-Forwarded-For", "1.2.3.4, ".repeat(50)],
      ["X-Forwarded-Proto", r.pick(["https", "gopher", ""])],
      ["Content-Encoding", r.pick(["gzip", "br", "x"])],
      ["Cookie", "a=".repeat(2000)],
      [`X-${r.text("abc", 8)}`, "v".repeat(r.int(8000))],
    ];
    for (let i = 0, n = 1 + r.int(4); i < n; i++) {
      const [key, value] = r.pick(pairs);
      headers[key] = value;
    }
    const { method, path } = route(r, s.repository, r.pick([s.tag, s.manifestDigest]));
    const body = method === "PUT" ? (r.chance(0.5) ? s.manifest : r.bytes(100)) : undefined;
    return http(`odd headers ${Object.keys(headers).join(",")}`, method, path, headers, body);
  },
  traversal: (r, s) => {
    const attempt = traversal(r);
    const body = Buffer.from("escaped");
    const cases: (() => HttpCase)[] = [
      () => http("traversal in the name", "GET", `/v2/${attempt}/tags/list`),
      () => http("traversal in the name (upload)", "POST", `/v2/fuzz/${attempt}/blobs/uploads/?digest=${sha256(body)}`, {}, body), // prettier-ignore
      () => http("traversal after /v2/", "GET", `/v2/${attempt}`),
      () => http("traversal as upload id", r.pick(["PATCH", "PUT", "GET", "DELETE"]), `/v2/${s.repository}/blobs/uploads/${attempt}?digest=${sha256(body)}`, {}, body), // prettier-ignore
      () => http("traversal as tag", "PUT", `/v2/${s.repository}/manifests/${attempt}`, { "Content-Type": OCI_MANIFEST }, s.manifest), // prettier-ignore
      () => http("traversal as digest", r.pick(["GET", "DELETE"]), `/v2/${s.repository}/blobs/sha256:${attempt}`), // prettier-ignore
      () => http("traversal in an upload location", "PATCH", (l) => l.replace(/uploads\/[^/?]+/, `uploads/${attempt}`), {}, body), // prettier-ignore
      () => http("upload of another repository", "PATCH", (l) => l.replace(s.repository, "fuzz/other"), {}, body), // prettier-ignore
    ];
    return r.pick(cases)();
  },
  upload: (r, s) => {
    const body = r.bytes(r.int(3000));
    const cases: (() => HttpCase)[] = [
      () => http("finish with a wrong digest", "PUT", (l) => withQuery(l, `digest=${sha256("other")}`), {}, body), // prettier-ignore
      () => http("finish without digest", "PUT", (l) => l, {}, body),
      () => http("finish with two digests", "PUT", (l) => withQuery(l, `digest=${sha256(body)}&digest=${s.layerDigest}`), {}, body), // prettier-ignore
      () => http("status of an upload", r.pick(["GET", "HEAD"]), (l) => l),
      () => http("cancel an upload", "DELETE", (l) => l),
      () => http("chunk with a gap", "PATCH", (l) => l, { "Content-Range": `10-${9 + body.length}` }, body), // prettier-ignore
      () => http("chunk with a wrong length", "PATCH", (l) => l, { "Content-Range": `0-${body.length + 5}` }, body), // prettier-ignore
      () => http("manifest PUT on an upload", "PUT", (l) => withQuery(l, `digest=${s.manifestDigest}`), { "Content-Type": OCI_MANIFEST }, s.manifest), // prettier-ignore
      () => http("a made-up upload id", r.pick(["PATCH", "PUT", "GET", "DELETE"]), `/v2/${s.repository}/blobs/uploads/${r.text(HEX + "-", r.int(80))}?digest=${sha256(body)}`, {}, body), // prettier-ignore
      () => http("state query tampered", "PATCH", (l) => l.replace(/_state=[^&]*/, `_state=${r.text("abcXYZ09%", 40)}`), {}, body), // prettier-ignore
    ];
    return r.pick(cases)();
  },
  raw: (r, s) => rawCase(r, s),
};

const CRLF = "\r\n";

function rawCase(r: Random, s: FuzzSeed): RawCase {
  const host = "Host: 127.0.0.1" + CRLF;
  const blob = `/v2/${s.repository}/blobs/${s.layerDigest}`;
  const cases: [string, string | Buffer, ("head" | "incomplete")?][] = [
    ["garbage request line", `GARBAGE${CRLF}${CRLF}`],
    ["random bytes", r.bytes(1 + r.int(600))],
    ["no path", `GET${CRLF}${CRLF}`],
    ["HTTP/9.9", `GET /v2/ HTTP/9.9${CRLF}${host}${CRLF}`],
    ["Content-Length not a number", `PUT /v2/${s.repository}/manifests/x HTTP/1.1${CRLF}${host}Content-Length: abc${CRLF}${CRLF}`], // prettier-ignore
    ["negative Content-Length", `POST /v2/${s.repository}/blobs/uploads/ HTTP/1.1${CRLF}${host}Content-Length: -1${CRLF}${CRLF}`], // prettier-ignore
    ["two Content-Lengths", `PUT /v2/${s.repository}/manifests/x HTTP/1.1${CRLF}${host}Content-Length: 2${CRLF}Content-Length: 3${CRLF}${CRLF}abc`], // prettier-ignore
    ["Content-Length with chunked", `PUT /v2/${s.repository}/manifests/x HTTP/1.1${CRLF}${host}Content-Length: 5${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}0${CRLF}${CRLF}`], // prettier-ignore
    ["bad chunk size", `PUT /v2/${s.repository}/manifests/x HTTP/1.1${CRLF}${host}Content-Type: ${OCI_MANIFEST}${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}zz${CRLF}abc${CRLF}`], // prettier-ignore
    ["chunk extensions overflow", `PUT /v2/${s.repository}/manifests/x HTTP/1.1${CRLF}${host}Transfer-Encoding: chunked${CRLF}${CRLF}1;${"a=b;".repeat(5000)}${CRLF}a${CRLF}0${CRLF}${CRLF}`], // prettier-ignore
    ["unknown transfer encoding", `PUT /v2/${s.repository}/manifests/x HTTP/1.1${CRLF}${host}Transfer-Encoding: xchunked${CRLF}${CRLF}abc`], // prettier-ignore
    ["header without colon", `GET /v2/ HTTP/1.1${CRLF}${host}NoColonHere${CRLF}${CRLF}`],
    ["space in header name", `GET /v2/ HTTP/1.1${CRLF}${host}Bad Name: x${CRLF}${CRLF}`],
    ["NUL in header value", `GET /v2/ HTTP/1.1${CRLF}${host}X-A: a\u0000b${CRLF}${CRLF}`],
    ["headers too large", `GET /v2/ HTTP/1.1${CRLF}${host}X-Big: ${"b".repeat(20_000 + r.int(60_000))}${CRLF}${CRLF}`], // prettier-ignore
    ["headers too large (HEAD)", `HEAD ${blob} HTTP/1.1${CRLF}${host}X-Big: ${"b".repeat(70_000)}${CRLF}${CRLF}`, "head"], // prettier-ignore
    ["URL too long", `GET /v2/${"a/".repeat(20_000 + r.int(20_000))}tags/list HTTP/1.1${CRLF}${host}${CRLF}`], // prettier-ignore
    ["HTTP/2 preface", `PRI * HTTP/2.0${CRLF}${CRLF}SM${CRLF}${CRLF}`],
    ["TLS client hello", Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03])], // prettier-ignore
    ["obsolete line folding", `GET /v2/ HTTP/1.1${CRLF}${host}X-A: a${CRLF} folded${CRLF}${CRLF}`],
    ["LF-only line endings", `GET /v2/ HTTP/1.1\n${host.trim()}\n\n`],
    ["bare CR", `GET /v2/ HTTP/1.1\r${host}\r\r`],
    ["Expect not met", `PUT /v2/${s.repository}/manifests/x HTTP/1.1${CRLF}${host}Expect: ${r.pick(["bogus", "200-ok", "100-continue, x"])}${CRLF}Content-Length: 2${CRLF}${CRLF}{}`], // prettier-ignore
    ["body shorter than Content-Length", `PUT /v2/${s.repository}/manifests/t${r.int(9)} HTTP/1.1${CRLF}${host}Content-Type: ${OCI_MANIFEST}${CRLF}Content-Length: ${200 + r.int(5000)}${CRLF}${CRLF}${s.manifest.subarray(0, 100).toString()}`, "incomplete"], // prettier-ignore
    ["upload body cut short", `POST /v2/${s.repository}/blobs/uploads/?digest=${s.layerDigest} HTTP/1.1${CRLF}${host}Content-Length: ${s.layer.length}${CRLF}${CRLF}${s.layer.subarray(0, r.int(s.layer.length)).toString()}`, "incomplete"], // prettier-ignore
    ["chunked upload cut short", `POST /v2/${s.repository}/blobs/uploads/?digest=${s.layerDigest} HTTP/1.1${CRLF}${host}Transfer-Encoding: chunked${CRLF}${CRLF}400${CRLF}${"x".repeat(r.int(1024))}`, "incomplete"], // prettier-ignore
    ["request line only", `GET /v2/ HTTP/1.1${CRLF}`, "incomplete"],
    ["raw traversal path", `GET /v2/../../${traversal(r)} HTTP/1.1${CRLF}${host}${CRLF}`],
    ["space in path", `GET /v2/a b/tags/list HTTP/1.1${CRLF}${host}${CRLF}`],
    ["absolute URI", `GET http://evil.example/v2/${s.repository}/tags/list HTTP/1.1${CRLF}${host}${CRLF}`], // prettier-ignore
    ["CONNECT", `CONNECT 127.0.0.1:22 HTTP/1.1${CRLF}${host}${CRLF}`],
    ["non-ASCII path", Buffer.concat([Buffer.from("GET /v2/\xff\xfe/tags/list HTTP/1.1\r\n", "latin1"), Buffer.from(host + CRLF)])], // prettier-ignore
    ["HEAD with bad Content-Length", `HEAD ${blob} HTTP/1.1${CRLF}${host}Content-Length: x${CRLF}${CRLF}`, "head"], // prettier-ignore
    [
      "websocket upgrade",
      `GET /v2/ HTTP/1.1${CRLF}${host}Connection: Upgrade${CRLF}Upgrade: websocket${CRLF}${CRLF}`,
    ],
    ["h2c upgrade", `GET /v2/_catalog HTTP/1.1${CRLF}${host}Connection: Upgrade, HTTP2-Settings${CRLF}Upgrade: h2c${CRLF}HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA${CRLF}${CRLF}`], // prettier-ignore
    ["pipelined then garbage", `GET /v2/ HTTP/1.1${CRLF}${host}${CRLF}GARBAGE${CRLF}${CRLF}`],
  ];
  const [label, bytes, flag] = r.pick(cases);
  return {
    kind: "raw",
    label,
    bytes: typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes,
    ...(flag === "head" ? { head: true } : {}),
    ...(flag === "incomplete" ? { incomplete: true } : {}),
  };
}

/** The kinds of malformed request, each drawn with equal chance. */
export const FUZZ_KINDS: readonly string[] = Object.keys(GENERATORS);

/** The `index`-th case of the run seeded with `seed`: the same pair always gives the same case. */
export function fuzzCase(seed: number, index: number, registrySeed: FuzzSeed): FuzzCase {
  const r = new Random((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const kind = r.pick(FUZZ_KINDS);
  const made = GENERATORS[kind]!(r, registrySeed);
  return { ...made, label: `${kind}: ${made.label}` };
}
