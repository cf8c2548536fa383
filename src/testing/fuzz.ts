// Test support: sends the fuzz cases of fuzz-cases.ts to a registry and judges each answer. No
// answer may be a 5xx, and every error answer (4xx) must be the OCI error envelope
// (`{"errors":[{"code","message","detail"?}]}` with a JSON content type), except the bodiless
// answer to a HEAD. Requests Node's client could send must get an answer; raw bytes may also be
// answered by closing the connection. Used by src/server/fuzz.test.ts and bench/fuzz.ts (which
// runs it against distribution too).

import { Agent, request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { fuzzCase, type FuzzCase, type FuzzSeed, type RawCase } from "./fuzz-cases.js";
import { SPEC_ERROR_CODES } from "./harness.js";

/** The codes an error envelope may carry: the OCI spec's and the ones distribution adds. */
const ERROR_CODES = new Set<string>([
  ...SPEC_ERROR_CODES,
  "TOOMANYREQUESTS",
  "RANGE_INVALID",
  "PAGINATION_NUMBER_INVALID",
  "UNAVAILABLE",
  "UNKNOWN",
]);

/** A request whose answer broke a rule. */
export interface FuzzFinding {
  /** The case's index in the seeded run: `fuzzCase(seed, index)` makes it again. */
  index: number;
  label: string;
  /** The request line as sent (the start of the bytes, for a raw case). */
  request: string;
  status: number | undefined;
  problem: string;
}

/** What a fuzz run saw. */
export interface FuzzReport {
  seed: number;
  /** Cases sent. */
  cases: number;
  /** HTTP requests made, with the POSTs that opened upload sessions for cases needing one. */
  requests: number;
  /** Answers by status ("closed" for a raw case answered by closing the connection). */
  statuses: Record<string, number>;
  /** Cases per kind. */
  kinds: Record<string, number>;
  /** Answers with a 5xx. */
  serverErrors: FuzzFinding[];
  /** Error answers outside the envelope. */
  envelopeViolations: FuzzFinding[];
  /** Requests from Node's client that got no answer (connection closed or no answer in time). */
  unanswered: FuzzFinding[];
  /** Raw cases answered by closing the connection, by label. */
  closed: Record<string, number>;
  /** Requests sent again on a new connection after a kept-alive one was closed under them. */
  resent: number;
}

/** Options of `runFuzz`. */
export interface FuzzOptions {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  seed: number;
  /** How many cases to send. */
  count: number;
  /** Cases in flight at once; default 8. */
  concurrency?: number;
  /** What the registry holds (pushed by `pushFuzzSeed`). */
  registrySeed: FuzzSeed;
  /** Called every `progressEvery` cases. */
  onProgress?: (done: number, report: FuzzReport) => void;
  progressEvery?: number;
  /** How long to wait for an answer, in ms; default 60000. */
  answerTimeoutMs?: number;
}

/** Bodies at least this big may be answered and cut before the client has sent them whole. */
const LARGE_BODY = 64 * 1024;
/** The most of an answer kept to judge it. */
const KEEP_BYTES = 256 * 1024;

/** Why an error answer is not the envelope, or undefined when it is. */
export function envelopeProblem(contentType: string | undefined, body: Buffer): string | undefined {
  if (!/^application\/json\b/i.test(contentType ?? ""))
    return `content type ${JSON.stringify(contentType)}, body ${JSON.stringify(body.subarray(0, 80).toString())}`; // prettier-ignore
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return `body is not JSON: ${JSON.stringify(body.subarray(0, 80).toString())}`;
  }
  const errors = (parsed as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return "no errors array";
  for (const entry of errors as { code?: unknown; message?: unknown }[]) {
    if (typeof entry?.code !== "string" || !ERROR_CODES.has(entry.code))
      return `unknown code ${JSON.stringify(entry?.code)}`;
    if (typeof entry.message !== "string") return `message is ${typeof entry.message}`;
  }
  return undefined;
}

interface Answer {
  status: number | undefined;
  contentType: string | undefined;
  body: Buffer;
  /** Why there is no answer (status undefined). */
  failure?: string;
  /** The request went on a kept-alive connection (which the server may close at any time). */
  reused?: boolean;
}

function httpExchange(
  agent: Agent,
  base: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (answer: Answer): void => {
      if (settled) return;
      settled = true;
      resolve(answer);
    };
    let req;
    try {
      req = request({
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: { ...headers, ...(body ? { "Content-Length": String(body.length) } : {}) },
        timeout: timeoutMs,
      });
    } catch (error) {
      done({ status: undefined, contentType: undefined, body: Buffer.alloc(0), failure: `client refused to send: ${String(error)}` }); // prettier-ignore
      return;
    }
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on("data", (chunk: Buffer) => {
        if (kept < KEEP_BYTES) chunks.push(chunk);
        kept += chunk.length;
      });
      const finish = (): void =>
        done({ status: res.statusCode, contentType: contentTypeOf(res.headers), body: Buffer.concat(chunks) }); // prettier-ignore
      res.on("end", finish);
      res.on("error", finish);
      res.on("aborted", finish);
    });
    req.on("timeout", () => {
      req.destroy();
      done({ status: undefined, contentType: undefined, body: Buffer.alloc(0), failure: `no answer within ${timeoutMs} ms` }); // prettier-ignore
    });
    req.on("error", (error: NodeJS.ErrnoException) => {
      done({ status: undefined, contentType: undefined, body: Buffer.alloc(0), failure: error.code ?? error.message, reused: req.reusedSocket }); // prettier-ignore
    });
    req.end(body);
  });
}

function contentTypeOf(headers: IncomingHttpHeaders): string | undefined {
  return headers["content-type"];
}

/** After this long without an answer, a raw case's connection is half-closed (end of request). */
const RAW_SILENCE_MS = 3000;

/**
 * Writes `bytes` and reads until the first answer is complete or the server closes. The request
 * is half-closed at once when `incomplete` (only the end of the stream completes it), else after
 * RAW_SILENCE_MS without an answer: a server aborts a request whose client half-closed, as Node
 * and Go do, so a complete request is given the time to be answered first.
 */
function rawExchange(base: URL, fuzz: RawCase, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect(Number(base.port), base.hostname);
    const chunks: Buffer[] = [];
    let kept = 0;
    socket.setTimeout(timeoutMs, () => socket.destroy());
    let silence: NodeJS.Timeout | undefined;
    socket.on("connect", () => {
      if (fuzz.incomplete) socket.end(fuzz.bytes);
      else socket.write(fuzz.bytes, () => (silence = setTimeout(() => socket.end(), RAW_SILENCE_MS))); // prettier-ignore
    });
    socket.on("data", (chunk: Buffer) => {
      if (kept < KEEP_BYTES) chunks.push(chunk);
      kept += chunk.length;
      if (parseRaw(Buffer.concat(chunks), fuzz.head === true).complete) socket.destroy();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(silence);
      const bytes = Buffer.concat(chunks);
      if (bytes.length === 0)
        resolve({ status: undefined, contentType: undefined, body: bytes, failure: "closed" }); // prettier-ignore
      else resolve(parseRaw(bytes, fuzz.head === true));
    });
  });
}

/** The first response in raw bytes: status, content type, body (by Content-Length), whether whole. */
function parseRaw(bytes: Buffer, head: boolean): Answer & { complete: boolean } {
  // Interim answers (100 Continue) come before the answer to judge.
  while (/^HTTP\/1\.[01] 1\d\d /.test(bytes.subarray(0, 13).toString("latin1"))) {
    const interimEnd = bytes.indexOf("\r\n\r\n");
    if (interimEnd < 0) break;
    bytes = bytes.subarray(interimEnd + 4);
  }
  const end = bytes.indexOf("\r\n\r\n");
  const text = bytes.subarray(0, end < 0 ? bytes.length : end).toString("latin1");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
  if (status === undefined || end < 0)
    return { status: undefined, contentType: undefined, body: bytes, complete: false, failure: `not an HTTP answer: ${JSON.stringify(text.slice(0, 80))}` }; // prettier-ignore
  const header = (name: string): string | undefined =>
    new RegExp(`\\r\\n${name}:[ \\t]*([^\\r\\n]*)`, "i").exec(text)?.[1];
  const length = header("content-length");
  const rest = bytes.subarray(end + 4);
  const body = length === undefined || head ? rest : rest.subarray(0, Number(length));
  const complete = head || (length !== undefined && rest.length >= Number(length));
  return { status: Number(status), contentType: header("content-type"), body, complete };
}

/** Opens an upload session in the seeded repository; its Location without scheme and host. */
async function openUpload(
  agent: Agent,
  base: URL,
  repository: string,
): Promise<Answer & { location?: string }> {
  // prettier-ignore
  return new Promise((resolve) => {
    const req = request({ agent, host: base.hostname, port: base.port, method: "POST", path: `/v2/${repository}/blobs/uploads/` }); // prettier-ignore
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => {
        const location = res.headers.location;
        resolve({
          status: res.statusCode,
          contentType: contentTypeOf(res.headers),
          body: Buffer.alloc(0),
          ...(location ? { location: location.replace(/^https?:\/\/[^/]+/, "") } : {}),
        });
      });
    });
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve({ status: undefined, contentType: undefined, body: Buffer.alloc(0), failure: error.code ?? error.message }), // prettier-ignore
    );
    req.end();
  });
}

function describeRequest(fuzz: FuzzCase, path?: string): string {
  if (fuzz.kind === "raw") return JSON.stringify(fuzz.bytes.subarray(0, 160).toString("latin1"));
  const body = fuzz.body ? ` (${fuzz.body.length}-byte body)` : "";
  const headers = Object.keys(fuzz.headers).length ? ` ${JSON.stringify(fuzz.headers).slice(0, 200)}` : ""; // prettier-ignore
  return `${fuzz.method} ${(path ?? "").slice(0, 300)}${headers}${body}`;
}

/** Pushes the seed image (layer, config, manifest tagged) through the API. */
export async function pushFuzzSeed(url: string, seed: FuzzSeed): Promise<void> {
  for (const [blob, digest] of [
    [seed.layer, seed.layerDigest],
    [seed.config, seed.configDigest],
  ] as const) {
    // POST then PUT: distribution 2.8 ignores a monolithic POST's body.
    const started = await fetch(`${url}/v2/${seed.repository}/blobs/uploads/`, { method: "POST" });
    const location = new URL(started.headers.get("location") ?? "", url);
    location.searchParams.set("digest", digest);
    const response = await fetch(location, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob,
    });
    if (response.status !== 201)
      throw new Error(`seed blob push: ${response.status} ${await response.text()}`);
  }
  const response = await fetch(`${url}/v2/${seed.repository}/manifests/${seed.tag}`, {
    method: "PUT",
    headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
    body: seed.manifest,
  });
  if (response.status !== 201)
    throw new Error(`seed manifest push: ${response.status} ${await response.text()}`);
}

/** Sends `count` seeded cases to the registry at `url` and reports what it answered. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const { seed, count, registrySeed } = options;
  const base = new URL(options.url);
  const timeoutMs = options.answerTimeoutMs ?? 60_000;
  const concurrency = options.concurrency ?? 8;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const fresh = new Agent({ keepAlive: false });
  const report: FuzzReport = {
    seed,
    cases: 0,
    requests: 0,
    statuses: {},
    kinds: {},
    serverErrors: [],
    envelopeViolations: [],
    unanswered: [],
    closed: {},
    resent: 0,
  };
  const count1 = (record: Record<string, number>, key: string): void => {
    record[key] = (record[key] ?? 0) + 1;
  };

  const judge = (index: number, fuzz: FuzzCase, path: string | undefined, answer: Answer): void => {
    const finding = (problem: string): FuzzFinding => ({
      index,
      label: fuzz.label,
      request: describeRequest(fuzz, path),
      status: answer.status,
      problem,
    });
    if (answer.status === undefined) {
      if (fuzz.kind === "raw") {
        count1(report.statuses, "closed");
        count1(report.closed, fuzz.label);
        if (answer.body.length > 0) report.envelopeViolations.push(finding(answer.failure ?? "?"));
        return;
      }
      count1(report.statuses, "none");
      if ((fuzz.body?.length ?? 0) < LARGE_BODY) report.unanswered.push(finding(answer.failure ?? "?")); // prettier-ignore
      return;
    }
    count1(report.statuses, String(answer.status));
    if (answer.status >= 500) report.serverErrors.push(finding(`status ${answer.status}`));
    const head = fuzz.kind === "raw" ? fuzz.head === true : fuzz.method === "HEAD";
    if (answer.status >= 400 && !head) {
      const problem = envelopeProblem(answer.contentType, answer.body);
      if (problem !== undefined) report.envelopeViolations.push(finding(problem));
    }
  };

  const one = async (index: number): Promise<void> => {
    const fuzz = fuzzCase(seed, index, registrySeed);
    count1(report.kinds, fuzz.label.slice(0, fuzz.label.indexOf(":")));
    report.cases++;
    if (fuzz.kind === "raw") {
      report.requests++;
      judge(index, fuzz, undefined, await rawExchange(base, fuzz, timeoutMs));
      return;
    }
    let path: string;
    if (typeof fuzz.path === "function") {
      report.requests++;
      const opened = await openUpload(agent, base, registrySeed.repository);
      if (opened.location === undefined) {
        judge(index, { ...fuzz, label: `${fuzz.label} (opening its upload)` }, `/v2/${registrySeed.repository}/blobs/uploads/`, opened); // prettier-ignore
        if (opened.status !== undefined && opened.status < 400)
          report.envelopeViolations.push({ index, label: fuzz.label, request: "POST upload", status: opened.status, problem: "no Location" }); // prettier-ignore
        return;
      }
      path = fuzz.path(opened.location);
    } else {
      path = fuzz.path;
    }
    report.requests++;
    let answer = await httpExchange(agent, base, fuzz.method, path, fuzz.headers, fuzz.body, timeoutMs); // prettier-ignore
    if (answer.status === undefined && answer.reused === true) {
      // A server may close a kept-alive connection while a request is on its way (Node's docs:
      // retry on a reused socket); the request goes again on a connection of its own.
      report.resent++;
      report.requests++;
      answer = await httpExchange(fresh, base, fuzz.method, path, fuzz.headers, fuzz.body, timeoutMs); // prettier-ignore
    }
    judge(index, fuzz, path, answer);
  };

  let next = 0;
  const every = options.progressEvery ?? 1000;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      await one(index);
      if (options.onProgress && report.cases % every === 0)
        options.onProgress(report.cases, report);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
    fresh.destroy();
  }
  return report;
}

/** A short text of a report's findings, for an assertion message or the script's output. */
export function describeFindings(report: FuzzReport, limit = 10): string {
  const lines: string[] = [];
  const section = (title: string, findings: FuzzFinding[]): void => {
    if (findings.length === 0) return;
    lines.push(`${title}: ${findings.length}`);
    for (const f of findings.slice(0, limit))
      lines.push(`  #${f.index} [${f.label}] ${f.request} -> ${f.status ?? "-"}: ${f.problem}`);
  };
  section("5xx answers", report.serverErrors);
  section("error answers outside the envelope", report.envelopeViolations);
  section("requests without an answer", report.unanswered);
  lines.push(`(seed ${report.seed}; a case is fuzzCase(seed, index) in src/testing/fuzz-cases.ts)`);
  return lines.join("\n");
}
