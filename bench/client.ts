// The bench's HTTP client for blob and manifest traffic: node:http with keep-alive and streamed
// bodies, the leanest client Node has, so that the client is not what limits a throughput figure.
// Every call checks the status the OCI Distribution Spec prescribes and fails naming what came back.

import { createHash } from "node:crypto";
import { Agent, request, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { pipeline } from "node:stream/promises";
import type { BlobContent } from "./content.js";

/** A blob or manifest as a registry reports it on HEAD. */
export interface BlobHead {
  digest: string | undefined;
  size: number;
}

/** What a pull saw. */
export interface PullResult {
  bytes: number;
  /** `sha256:<hex>` of what arrived, when the pull was asked to hash. */
  digest: string | undefined;
}

interface Response {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** Talks the /v2/ API to one registry over a pool of keep-alive connections. */
export class RegistryClient {
  readonly base: string;
  readonly #agent: Agent;

  constructor(base: string, maxSockets = 64) {
    this.base = base;
    this.#agent = new Agent({ keepAlive: true, maxSockets });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** POST, then PUT with the whole blob as the body and its digest in the query. */
  async pushMonolithic(repository: string, blob: BlobContent): Promise<void> {
    const location = await this.#startUpload(repository);
    const response = await this.#send(
      "PUT",
      withQuery(location, "digest", blob.digest()),
      { "content-type": "application/octet-stream", "content-length": blob.size },
      blob.chunks(),
    );
    expectStatus(response, 201, `PUT blob ${blob.label}`);
  }

  /** POST, then PATCHes of `chunkBytes` with Content-Range, then PUT ?digest= without a body. */
  async pushChunked(repository: string, blob: BlobContent, chunkBytes: number): Promise<void> {
    let location = await this.#startUpload(repository);
    for (let start = 0; start < blob.size; start += chunkBytes) {
      const end = Math.min(start + chunkBytes, blob.size);
      const response = await this.#send(
        "PATCH",
        location,
        {
          "content-type": "application/octet-stream",
          "content-length": end - start,
          "content-range": `${start}-${end - 1}`,
        },
        blob.chunks(start, end),
      );
      expectStatus(response, 202, `PATCH ${start}-${end - 1} of ${blob.label}`);
      location = this.#location(response, "PATCH");
    }
    const response = await this.#send(
      "PUT",
      withQuery(location, "digest", blob.digest()),
      { "content-length": 0 },
      undefined,
    );
    expectStatus(response, 201, `PUT (close chunked upload) ${blob.label}`);
  }

  /**
   * GET the blob and count (and when asked, hash) the bytes as they arrive. A pull at 2 GB/s is
   * more than node:http's response stream delivers on one core (a buffer and an event per 64 KiB),
   * so this reads a fresh connection straight into one reused 1 MiB buffer: the request line, the
   * response head parsed once, then the body only counted. Blob GETs answer with Content-Length;
   * anything else (redirect, chunked) fails rather than being miscounted.
   */
  pull(repository: string, digest: string, hash: boolean): Promise<PullResult> {
    const url = new URL(`${this.base}/v2/${repository}/blobs/${digest}`);
    const hasher = hash ? createHash("sha256") : undefined;
    return new Promise((resolve, reject) => {
      let head: Buffer | undefined = Buffer.alloc(0);
      let expected = -1;
      let bytes = 0;
      const fail = (message: string) => {
        socket.destroy();
        reject(new Error(`GET ${url.href}: ${message}`));
      };
      const body = (part: Buffer) => {
        bytes += part.length;
        hasher?.update(part);
      };
      const onRead = (length: number, buffer: Buffer): boolean => {
        const part = buffer.subarray(0, length);
        if (head === undefined) {
          body(part);
          return true;
        }
        head = Buffer.concat([head, part]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return true;
        const lines = head.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(lines[0]?.split(" ")[1]);
        const fields = new Map(
          lines.slice(1).map((line) => {
            const colon = line.indexOf(":");
            return [
              line.slice(0, colon).trim().toLowerCase(),
              line.slice(colon + 1).trim(),
            ] as const;
          }),
        );
        if (status !== 200) {
          fail(`answered ${status}`);
          return false;
        }
        if (!fields.has("content-length")) {
          fail(
            `answered without Content-Length (${fields.get("transfer-encoding") ?? "no framing"})`,
          );
          return false;
        }
        expected = Number(fields.get("content-length"));
        const rest = head.subarray(end + 4);
        head = undefined;
        body(rest);
        return true;
      };
      const socket = connect({
        host: url.hostname,
        port: Number(url.port),
        onread: { buffer: Buffer.allocUnsafe(1024 * 1024), callback: onRead },
      });
      socket.on("error", (error) => reject(new Error(`GET ${url.href}: ${error.message}`)));
      socket.on("end", () => {
        if (expected < 0)
          reject(new Error(`GET ${url.href}: connection closed before the response head`));
        else if (bytes !== expected)
          reject(new Error(`GET ${url.href}: ${bytes} bytes of ${expected}`));
        else resolve({ bytes, digest: hasher && `sha256:${hasher.digest("hex")}` });
      });
      socket.write(
        `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`,
      );
    });
  }

  /** HEAD the blob: its Docker-Content-Digest and Content-Length; null when absent. */
  async headBlob(repository: string, digest: string): Promise<BlobHead | null> {
    const response = await this.#send(
      "HEAD",
      `${this.base}/v2/${repository}/blobs/${digest}`,
      {},
      undefined,
    );
    if (response.status === 404) return null;
    expectStatus(response, 200, `HEAD blob ${digest}`);
    return {
      digest: header(response, "docker-content-digest"),
      size: Number(header(response, "content-length")),
    };
  }

  /** Checks by HEAD that the registry holds `digest` with `size` bytes; `what` names the check. */
  async verifyBlob(repository: string, digest: string, size: number, what: string): Promise<void> {
    const head = await this.headBlob(repository, digest);
    if (head === null)
      throw new Error(`${what}: HEAD ${digest} in ${repository} is 404 after the push`);
    if (head.size !== size)
      throw new Error(`${what}: HEAD ${digest} says ${head.size} bytes, pushed ${size}`);
    if (head.digest !== undefined && head.digest !== digest) {
      throw new Error(`${what}: HEAD ${digest} answers Docker-Content-Digest ${head.digest}`);
    }
  }

  /** PUT a small blob monolithically from memory. */
  async pushBytes(repository: string, digest: string, bytes: Buffer): Promise<void> {
    const location = await this.#startUpload(repository);
    const response = await this.#send(
      "PUT",
      withQuery(location, "digest", digest),
      { "content-type": "application/octet-stream", "content-length": bytes.length },
      [bytes],
    );
    expectStatus(response, 201, `PUT blob ${digest}`);
  }

  /** PUT a manifest under `reference`; returns the digest the registry reports. */
  async putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    bytes: Buffer,
  ): Promise<string> {
    const response = await this.#send(
      "PUT",
      `${this.base}/v2/${repository}/manifests/${reference}`,
      { "content-type": mediaType, "content-length": bytes.length },
      [bytes],
    );
    expectStatus(response, 201, `PUT manifest ${repository}:${reference}`);
    return header(response, "docker-content-digest") ?? "";
  }

  /** HEAD a manifest: its Docker-Content-Digest and Content-Length (fails unless 200). */
  async headManifest(repository: string, reference: string, accept: string): Promise<BlobHead> {
    const response = await this.#send(
      "HEAD",
      `${this.base}/v2/${repository}/manifests/${reference}`,
      { accept },
      undefined,
    );
    expectStatus(response, 200, `HEAD manifest ${repository}:${reference}`);
    return {
      digest: header(response, "docker-content-digest"),
      size: Number(header(response, "content-length")),
    };
  }

  /** GET a manifest; returns its bytes and reported digest. */
  async getManifest(
    repository: string,
    reference: string,
    accept: string,
  ): Promise<{ bytes: Buffer; digest: string | undefined }> {
    const response = await this.#send(
      "GET",
      `${this.base}/v2/${repository}/manifests/${reference}`,
      { accept },
      undefined,
    );
    expectStatus(response, 200, `GET manifest ${repository}:${reference}`);
    return { bytes: response.body, digest: header(response, "docker-content-digest") };
  }

  async #startUpload(repository: string): Promise<string> {
    const response = await this.#send(
      "POST",
      `${this.base}/v2/${repository}/blobs/uploads/`,
      { "content-length": 0 },
      undefined,
    );
    expectStatus(response, 202, `POST upload to ${repository}`);
    return this.#location(response, "POST");
  }

  #location(response: Response, what: string): string {
    const location = header(response, "location");
    if (location === undefined)
      throw new Error(`${what} answered ${response.status} without Location`);
    return new URL(location, this.base).href;
  }

  /** One request; the body is streamed with backpressure; the response body is buffered (small). */
  #send(
    method: string,
    url: string,
    headers: OutgoingHttpHeaders,
    body: Iterable<Buffer> | undefined,
  ): Promise<Response> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.#agent }, (response) => {
        buffer(response).then(
          (data) =>
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body: data }),
          reject,
        );
      });
      req.on("error", reject);
      if (body === undefined) {
        req.end();
        return;
      }
      // A server refusing early answers before the body is sent; the pipeline's error then is
      // only the broken socket, and the response says why, so it is not what we report.
      pipeline(Readable.from(body, { objectMode: false }), req).catch(() => undefined);
    });
  }
}

function withQuery(location: string, name: string, value: string): string {
  const url = new URL(location);
  url.searchParams.set(name, value);
  return url.href;
}

function header(response: Response, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function expectStatus(response: Response, expected: number, what: string): void {
  if (response.status === expected) return;
  const detail = response.body.toString("utf8").slice(0, 300);
  throw new Error(`${what}: expected ${expected}, got ${response.status} ${detail}`);
}
