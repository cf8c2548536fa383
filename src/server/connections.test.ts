// Connections from hostile or broken clients: stalled and trickling upload bodies closed by
// http.timeout.read while other clients keep being served, a slow but steady upload kept, idle
// keep-alive connections closed by http.timeout.idle, per-client caps answered 429 TOOMANYREQUESTS,
// and what Node's HTTP layer rejects answered in the API's error envelope.

import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { startRegistry, type RunningRegistry } from "./index.js";

/** A registry on the inmemory driver with the given http section additions. */
function start(http: Record<string, unknown>): Promise<RunningRegistry> {
  return startRegistry({
    config: {
      version: "0.1",
      storage: { inmemory: {}, maintenance: { uploadpurging: { enabled: false } } },
      http: { addr: "127.0.0.1:0", ...http },
    },
    logLevel: "silent",
  });
}

/** A raw TCP connection to the registry, with what it received and whether it closed. */
interface RawConnection {
  socket: Socket;
  received(): string;
  closed: Promise<void>;
}

function open(registry: RunningRegistry): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(registry.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => {});
    const closed = new Promise<void>((done) => socket.once("close", () => done()));
    socket.once("connect", () =>
      resolve({ socket, received: () => Buffer.concat(chunks).toString("latin1"), closed }),
    );
    socket.once("error", reject);
  });
}

/** Starts an upload session and returns its path. */
async function startUpload(registry: RunningRegistry, name = "fuzz/stall"): Promise<string> {
  const response = await fetch(`${registry.url}/v2/${name}/blobs/uploads/`, { method: "POST" });
  assert.equal(response.status, 202);
  return response.headers.get("location")!;
}

function patchHead(registry: RunningRegistry, location: string, length: number): string {
  return (
    `PATCH ${location} HTTP/1.1\r\nHost: 127.0.0.1:${registry.port}\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The JSON error envelope of a raw HTTP response: status and first error code. */
function parseRaw(text: string): { status: number; code: string | undefined; headers: string } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const split = text.indexOf("\r\n\r\n");
  const headers = text.slice(0, split);
  const body = text.slice(split + 4);
  const parsed = JSON.parse(body) as { errors: { code: string }[] };
  return { status, code: parsed.errors[0]?.code, headers };
}

describe("http.timeout", () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await start({
      timeout: { read: "2s", write: "2s", idle: "2s" },
      limits: { uploadsperclient: 0, connectionsperclient: 0 },
    });
  });
  after(() => registry.close());

  it("closes 200 stalled PATCH bodies and 20 trickling ones, serving other clients meanwhile (failed before: never closed)", async () => {
    // Sessions first, one at a time: on a loaded machine 200 requests at once can lag past 2 s.
    const locations: string[] = [];
    for (let i = 0; i < 220; i++) locations.push(await startUpload(registry));
    const stalled = await Promise.all(
      locations.slice(0, 200).map(async (location) => {
        const connection = await open(registry);
        connection.socket.write(patchHead(registry, location, 1 << 20));
        connection.socket.write(Buffer.alloc(2048, 1));
        return { connection, location };
      }),
    );
    const trickling = await Promise.all(
      locations.slice(200).map(async (location) => {
        const connection = await open(registry);
        connection.socket.write(patchHead(registry, location, 1 << 20));
        const timer = setInterval(() => connection.socket.write("x"), 100);
        void connection.closed.then(() => clearInterval(timer));
        return connection;
      }),
    );
    // Others are served while those hang.
    for (let i = 0; i < 5; i++) {
      assert.equal((await fetch(`${registry.url}/v2/`)).status, 200);
      await sleep(50);
    }
    await Promise.all([...stalled.map(({ connection }) => connection.closed)]);
    await Promise.all(trickling.map((connection) => connection.closed));
    // What arrived before the stall is kept: the upload resumes from there.
    const status = await fetch(`${registry.url}${stalled[0]!.location}`);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), "0-2047");
    assert.equal((await fetch(`${registry.url}/v2/`)).status, 200);
  });

  it("keeps a slow upload whose bytes keep coming for longer than the read timeout", async () => {
    const location = await startUpload(registry);
    const connection = await open(registry);
    const chunk = Buffer.alloc(16 * 1024, 2);
    const chunks = 12;
    connection.socket.write(patchHead(registry, location, chunk.length * chunks));
    for (let i = 0; i < chunks; i++) {
      connection.socket.write(chunk);
      await sleep(500); // 6 s in all, three read periods
    }
    while (!connection.received().includes("\r\n\r\n")) await sleep(20);
    assert.match(connection.received(), /^HTTP\/1\.1 202 /);
    assert.match(connection.received(), new RegExp(`Range: 0-${chunk.length * chunks - 1}`, "i"));
    connection.socket.destroy();
  });

  it("closes idle keep-alive connections and connections that never send a request", async () => {
    const silent = await open(registry);
    const used = await open(registry);
    used.socket.write(`GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    await Promise.all([silent.closed, used.closed]);
    assert.match(used.received(), /^HTTP\/1\.1 200 /);
  });

  it("closes a connection that sends its headers too slowly", async () => {
    const connection = await open(registry);
    const header = "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(40);
    let index = 0;
    const timer = setInterval(() => connection.socket.write(header[index++ % header.length]!), 100);
    await connection.closed;
    clearInterval(timer);
  });
});

describe("http.limits", () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await start({
      timeout: { read: "30s" },
      limits: { uploadsperclient: 2, connectionsperclient: 8 },
    });
  });
  after(() => registry.close());

  it("answers uploads beyond http.limits.uploadsperclient with 429 TOOMANYREQUESTS and Retry-After", async () => {
    const held = await Promise.all(
      [0, 1].map(async () => {
        const location = await startUpload(registry);
        const connection = await open(registry);
        connection.socket.write(patchHead(registry, location, 1000));
        connection.socket.write("abc");
        return connection;
      }),
    );
    await sleep(100);
    const location = await startUpload(registry);
    const refused = await fetch(`${registry.url}${location}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream" },
      body: "data",
    });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "5");
    const body = (await refused.json()) as { errors: { code: string; message: string }[] };
    assert.equal(body.errors[0]!.code, "TOOMANYREQUESTS");
    assert.match(body.errors[0]!.message, /http\.limits\.uploadsperclient/);
    // Reads are not uploads.
    assert.equal((await fetch(`${registry.url}/v2/`)).status, 200);
    for (const connection of held) connection.socket.destroy();
    await Promise.all(held.map((connection) => connection.closed));
    await sleep(50);
    const accepted = await fetch(`${registry.url}${location}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream" },
      body: "data",
    });
    assert.equal(accepted.status, 202);
  });

  it("answers connections beyond http.limits.connectionsperclient with 429 and closes them", async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => open(registry)));
    const refused = await open(registry);
    await refused.closed;
    const parsed = parseRaw(refused.received());
    assert.equal(parsed.status, 429);
    assert.equal(parsed.code, "TOOMANYREQUESTS");
    assert.match(parsed.headers, /Retry-After: 5/);
    for (const connection of held) connection.socket.destroy();
    await Promise.all(held.map((connection) => connection.closed));
    await sleep(50);
    assert.equal((await fetch(`${registry.url}/v2/`)).status, 200);
  });
});

describe("rejections by Node's HTTP layer", () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await start({});
  });
  after(() => registry.close());

  const cases: [string, string, number, string][] = [
    ["a malformed request line", "GARBAGE\r\n\r\n", 400, "UNSUPPORTED"],
    ["a space in the target", "GET /v2/a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "UNSUPPORTED"],
    ["a bad header", "GET /v2/ HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "UNSUPPORTED"],
    [
      "headers too large",
      `GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
      431,
      "UNSUPPORTED",
    ],
    [
      "an Expect it cannot meet",
      "PUT /v2/a/manifests/b HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n",
      417,
      "UNSUPPORTED",
    ],
    [
      "chunk extensions too large",
      `PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;${"e".repeat(20_000)}\r\n`,
      413,
      "SIZE_INVALID",
    ],
    // Found by the fuzz test: Node closes a CONNECT's connection without an answer (before: none).
    ["a CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n", 405, "UNSUPPORTED"],
  ];
  for (const [what, request, status, code] of cases) {
    it(`answers ${what} with ${status} and the error envelope (failed before: no JSON body)`, async () => {
      const connection = await open(registry);
      connection.socket.write(request);
      await connection.closed;
      const parsed = parseRaw(connection.received());
      assert.equal(parsed.status, status);
      assert.equal(parsed.code, code);
    });
  }
});
