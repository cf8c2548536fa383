// PlainRangedGets against a scripted local HTTP server (raw `net`, so that answers can be
// malformed): bytes and pool reuse after a whole body, fallbacks for chunked and unsized answers,
// errors for short bodies, oversized and malformed headers, abort mid-body, 404/412/416, and a
// kept-alive socket the server closed. Then `copy` on sockets with reused buffers: into an HTTP
// response read slowly (the buffer is not overwritten while a write holds it), into a Writable that
// keeps its chunks, and its errors. (On the real gateway, through the driver: s3.test.ts.)

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Writable, type Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { bodySize, parseHead, S3StatusError } from "./plain-answer.js";
import { PlainRangedGets, UnusualAnswer, type RequestSigner } from "./plain-get.js";
import { download } from "../testsuite/support.js";

const MiB = 1024 * 1024;
const content = randomBytes(3 * MiB + 333);
/** More than loopback's socket buffers hold, so that a slow client fills them. */
const large = randomBytes(24 * MiB + 77);

/** Collects a body; rejects if it errors, so a short read can never pass as an end. */
function collect(body: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on("data", (chunk: Buffer) => chunks.push(chunk));
    body.once("end", () => resolve(Buffer.concat(chunks)));
    body.once("error", reject);
  });
}

/** Answers one request on `socket` according to the key in its path. */
function answer(socket: Socket, path: string, headers: Map<string, string>, served: number): void {
  const key = path.replace(/^\/bucket\//, "");
  // A server that closes a kept-alive connection as the next request arrives.
  if (key === "once-per-socket" && served > 0) return void socket.destroy();
  const object = key === "large" ? large : content;
  const range = /^bytes=(\d+)-(\d*)$/.exec(headers.get("range") ?? "");
  const first = Number(range?.[1] ?? 0);
  const last = Math.min(Number(range?.[2] || object.length - 1), object.length - 1);
  if (first >= object.length) {
    socket.write("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  const slice = object.subarray(first, last + 1);
  const partial = (extra = "", length: number | null = slice.length) =>
    "HTTP/1.1 206 Partial Content\r\n" +
    `Content-Range: bytes ${first}-${last}/${object.length}\r\n` +
    (length === null ? "" : `Content-Length: ${length}\r\n`) +
    `ETag: "abc"\r\n${extra}\r\n`;
  switch (key) {
    case "a%20b/blob%21":
    case "once-per-socket":
    case "large":
    case "object": {
      socket.write(partial());
      // Uneven writes, so that reads end anywhere in the body.
      for (let at = 0; at < slice.length;) {
        const size = 1000 + ((at * 7) % 90_000);
        socket.write(slice.subarray(at, at + size));
        at += size;
      }
      return;
    }
    case "chunked":
      socket.write(partial("Transfer-Encoding: chunked\r\n", null) + "5\r\nhello\r\n0\r\n\r\n");
      return;
    case "unsized":
      socket.end(partial("Connection: close\r\n", null) + "hello");
      return;
    case "short":
      socket.write(partial());
      socket.write(slice.subarray(0, slice.length >> 1), () => socket.destroy());
      return;
    case "stall":
      socket.write(partial());
      socket.write(slice.subarray(0, 100_000));
      return;
    case "big-head":
      socket.write(`HTTP/1.1 206 Partial Content\r\nX-Filler: ${"x".repeat(20_000)}\r\n\r\n`);
      return;
    case "bad-range":
      socket.write("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/100\r\n");
      socket.write("Content-Length: 5\r\n\r\nhello");
      return;
    case "bad-head":
      socket.write("HTTP/1.1 206 Partial Content\r\nno colon here\r\n\r\n");
      return;
    case "missing": {
      const xml = "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
      socket.write(`HTTP/1.1 404 Not Found\r\nContent-Length: ${xml.length}\r\n\r\n${xml}`);
      return;
    }
    case "changed":
      socket.write("HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n");
      return;
    case "past":
      socket.write("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n");
      return;
    case "busy":
      socket.write("HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\n\r\n");
      return;
    default:
      socket.destroy();
  }
}

describe("PlainRangedGets", () => {
  let server: Server;
  let url: URL;
  let connections = 0;
  const requests: Array<{ path: string; headers: Map<string, string> }> = [];
  const sockets = new Set<Socket>();
  // Adds a header, as a signer does, so that the test can see the signed headers are sent.
  const sign: RequestSigner = (request) =>
    Promise.resolve({ headers: { ...request.headers, authorization: "signed" } });
  const signal = new AbortController().signal;

  before(async () => {
    server = createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      let pending = Buffer.alloc(0);
      let served = 0;
      socket.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        for (let end = pending.indexOf("\r\n\r\n"); end !== -1; end = pending.indexOf("\r\n\r\n")) {
          const lines = pending.toString("latin1", 0, end).split("\r\n");
          pending = pending.subarray(end + 4);
          const headers = new Map(
            lines.slice(1).map((line) => {
              const colon = line.indexOf(":");
              return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
            }),
          );
          const path = lines[0]!.split(" ")[1]!;
          requests.push({ path, headers });
          answer(socket, path, headers, served++);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Runs `test` with a pool of its own, counting the connections it opens, and closes it. */
  const withPool = async (
    test: (gets: PlainRangedGets) => Promise<void>,
    reusedBuffers = false,
  ) => {
    const gets = new PlainRangedGets({ url, bucket: "bucket" }, sign, undefined, reusedBuffers);
    connections = 0;
    try {
      await test(gets);
    } finally {
      gets.close();
    }
  };
  /** The first 1000 bytes, read whole. */
  const readsFirstBytes = async (gets: PlainRangedGets) => {
    const answer = await gets.fetch("object", 0, 999, undefined, signal);
    assert.ok((await collect(answer!.body)).equals(content.subarray(0, 1000)));
  };

  it("reads whole parts on one kept-alive socket, sending the signed request", async () => {
    await withPool(async (gets) => {
      for (const [first, last] of [
        [0, MiB - 1],
        [MiB, 3 * MiB - 1],
        [3 * MiB, 4 * MiB - 1],
      ] as const) {
        const answer = await gets.fetch("object", first, last, undefined, signal);
        assert.ok(answer !== undefined);
        assert.equal(answer.total, content.length);
        assert.equal(answer.etag, '"abc"');
        const bytes = await collect(answer.body);
        assert.ok(bytes.equals(content.subarray(first, last + 1)), `bytes ${first}-${last}`);
      }
      assert.equal(connections, 1, "every part on the same socket");
      const sent = requests.at(-1)!;
      assert.equal(sent.headers.get("authorization"), "signed");
      assert.equal(sent.headers.get("range"), `bytes=${3 * MiB}-${4 * MiB - 1}`);
      assert.equal(sent.headers.get("host"), url.host);
      assert.equal(sent.headers.get("user-agent"), "berth");
    });
  });

  it("escapes keys as S3 signs them and sends If-Match", async () => {
    await withPool(async (gets) => {
      const answer = await gets.fetch("a b/blob!", 0, 99, '"abc"', signal);
      assert.ok((await collect(answer!.body)).equals(content.subarray(0, 100)));
      assert.equal(requests.at(-1)!.path, "/bucket/a%20b/blob%21");
      assert.equal(requests.at(-1)!.headers.get("if-match"), '"abc"');
    });
  });

  it("leaves chunked, unsized and other-status answers to the SDK (UnusualAnswer)", async () => {
    await withPool(async (gets) => {
      for (const key of ["chunked", "unsized", "busy"])
        await assert.rejects(gets.fetch(key, 0, 99, undefined, signal), UnusualAnswer, key);
      // An ETag that could not be sent as a header value goes the SDK's way too.
      await assert.rejects(gets.fetch("object", 0, 9, '"a"\r\nx: y', signal), UnusualAnswer);
    });
  });

  it("a body cut short is an error, never a short read", async () => {
    await withPool(async (gets) => {
      const answer = await gets.fetch("short", 0, MiB - 1, undefined, signal);
      await assert.rejects(collect(answer!.body), /closed with \d+ bytes of the part unread/);
    });
  });

  it("rejects headers over the limit, and malformed ones, with a clear error", async () => {
    await withPool(async (gets) => {
      await assert.rejects(gets.fetch("big-head", 0, 9, undefined, signal), /headers over 16384/);
      await assert.rejects(gets.fetch("bad-head", 0, 9, undefined, signal), /malformed header/);
      // A 206 for other bytes than asked: an error, and its socket (body unread) is closed.
      await assert.rejects(gets.fetch("bad-range", 0, 9, undefined, signal), /Content-Range/);
      await readsFirstBytes(gets);
      assert.equal(gets.sockets, 1, "the bad answer's socket is closed, not left open");
    });
  });

  it("maps 404 to the SDK's error shape, 412 likewise, 416 to undefined, reusing the socket", async () => {
    await withPool(async (gets) => {
      await assert.rejects(gets.fetch("missing", 0, 9, undefined, signal), (error: unknown) => {
        assert.ok(error instanceof S3StatusError);
        assert.equal(error.name, "NoSuchKey");
        assert.equal(error.message, "gone");
        assert.equal(error.$metadata.httpStatusCode, 404);
        return true;
      });
      await assert.rejects(
        gets.fetch("changed", 0, 9, '"old"', signal),
        (error: S3StatusError) => error.$metadata.httpStatusCode === 412,
      );
      assert.equal(await gets.fetch("past", 10, 19, undefined, signal), undefined);
      assert.equal(connections, 1, "error answers read to their end keep the socket");
    });
  });

  it("abort mid-body destroys the body and the socket; the next request opens a new one", async () => {
    await withPool(async (gets) => {
      const controller = new AbortController();
      const answer = await gets.fetch("stall", 0, MiB - 1, undefined, controller.signal);
      const reading = collect(answer!.body);
      setTimeout(() => controller.abort(new Error("client left")), 50);
      await assert.rejects(reading, /client left/);
      await readsFirstBytes(gets);
      assert.equal(connections, 2, "the aborted socket was not reused");
    });
  });

  it("a body destroyed before its end closes its socket instead of pooling it", async () => {
    await withPool(async (gets) => {
      const answer = await gets.fetch("object", 0, 3 * MiB - 1, undefined, signal);
      await new Promise<void>((resolve) =>
        answer!.body.once("data", () => {
          answer!.body.destroy();
          resolve();
        }),
      );
      await readsFirstBytes(gets);
      assert.equal(connections, 2);
    });
  });

  it("retries once on a fresh socket when a kept-alive one closes before answering", async () => {
    await withPool(async (gets) => {
      for (let round = 0; round < 2; round++) {
        const answer = await gets.fetch("once-per-socket", 0, 999, undefined, signal);
        assert.ok((await collect(answer!.body)).equals(content.subarray(0, 1000)));
      }
      assert.equal(connections, 2, "the second request went again on a new socket");
      assert.equal(requests.filter((r) => r.path === "/bucket/once-per-socket").length, 3);
    });
  });

  describe("copy, on sockets that read into a reused buffer", () => {
    const closed = (cause?: unknown) => new Error("destination closed", { cause });
    /**
     * Serves one GET with `gets.copy(key, first, last)` into the response and reads the answer
     * (slowly with `slow`); resolves with the bytes and the copy's result.
     */
    const copyThroughHttp = async (
      gets: PlainRangedGets,
      key: string,
      first: number,
      last: number | undefined,
      slow = false,
    ) => {
      let copied: Promise<boolean> | undefined;
      const server = createHttpServer((_req, res: ServerResponse) => {
        res.writeHead(200);
        copied = gets.copy(key, first, last, res, closed, signal);
        copied.then(
          () => res.end(),
          () => res.destroy(),
        );
      });
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      try {
        const port = (server.address() as AddressInfo).port;
        const bytes = await download(port, "/", slow);
        return { bytes, result: await copied! };
      } finally {
        server.closeAllConnections();
        server.close();
      }
    };

    it("writes a range, or all from an offset, into an HTTP response, reusing its socket", async () => {
      await withPool(async (gets) => {
        const whole = await copyThroughHttp(gets, "object", 0, undefined);
        assert.equal(whole.result, true);
        assert.ok(whole.bytes.equals(content), "the whole object");
        assert.equal(requests.at(-1)!.headers.get("range"), "bytes=0-");
        const range = await copyThroughHttp(gets, "object", 1000, 2 * MiB + 5);
        assert.ok(range.bytes.equals(content.subarray(1000, 2 * MiB + 6)), "a range");
        assert.equal(requests.at(-1)!.headers.get("range"), `bytes=1000-${2 * MiB + 5}`);
        assert.equal(connections, 1, "both GETs on the same socket");
      }, true);
    });

    it("a client slower than the backend gets every byte as it was (reads wait for held writes)", async () => {
      await withPool(async (gets) => {
        const { bytes } = await copyThroughHttp(gets, "large", 5, undefined, true);
        assert.equal(bytes.length, large.length - 5);
        assert.equal(
          createHash("sha256").update(bytes).digest("hex"),
          createHash("sha256").update(large.subarray(5)).digest("hex"),
        );
      }, true);
    });

    it("copies each read for a destination that keeps its chunks, and so does fetch's body", async () => {
      await withPool(async (gets) => {
        const kept: Buffer[] = [];
        const keeper = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            kept.push(chunk);
            setImmediate(callback);
          },
        });
        assert.equal(await gets.copy("large", 0, undefined, keeper, closed, signal), true);
        assert.ok(Buffer.concat(kept).equals(large), "every kept chunk is still what was read");
        const answer = await gets.fetch("object", 7, 3 * MiB, undefined, signal);
        const chunks: Buffer[] = [];
        answer!.body.on("data", (chunk: Buffer) => chunks.push(chunk));
        await once(answer!.body, "end");
        assert.ok(Buffer.concat(chunks).equals(content.subarray(7, 3 * MiB + 1)));
      }, true);
    });

    it("416 copies nothing; 404, a cut body and the SDK's cases reject, nothing written", async () => {
      await withPool(async (gets) => {
        const written: Buffer[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            written.push(Buffer.from(chunk));
            callback();
          },
        });
        assert.equal(
          await gets.copy("object", content.length, undefined, sink, closed, signal),
          false,
        );
        await assert.rejects(
          gets.copy("missing", 0, 9, sink, closed, signal),
          (error: S3StatusError) => error.name === "NoSuchKey",
        );
        for (const key of ["chunked", "unsized", "busy"])
          await assert.rejects(gets.copy(key, 0, 99, sink, closed, signal), UnusualAnswer, key);
        assert.equal(written.length, 0);
        await assert.rejects(
          gets.copy("short", 0, MiB - 1, sink, closed, signal),
          /closed with \d+ bytes of the body unread/,
        );
      }, true);
    });

    it("a destination that closes mid-copy rejects it and closes the backend socket", async () => {
      await withPool(async (gets) => {
        let taken = 0;
        const leaving = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            taken += chunk.length;
            if (taken > MiB) this.destroy();
            else callback();
          },
        });
        await assert.rejects(
          gets.copy("large", 0, undefined, leaving, closed, signal),
          /destination closed/,
        );
        const { bytes } = await copyThroughHttp(gets, "object", 0, 999);
        assert.ok(bytes.equals(content.subarray(0, 1000)));
        assert.equal(connections, 2, "the socket of the failed copy was not reused");
      }, true);
    });

    it("an abort mid-copy rejects with its reason", async () => {
      await withPool(async (gets) => {
        const controller = new AbortController();
        const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
        const copying = gets.copy("stall", 0, MiB - 1, sink, closed, controller.signal);
        setTimeout(() => controller.abort(new Error("client left")), 50);
        await assert.rejects(copying, /client left/);
      }, true);
    });
  });

  it("parses heads strictly", () => {
    const head = parseHead('HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nETag: "x"');
    assert.equal(head.status, 206);
    assert.equal(head.keepAlive, true);
    assert.equal(bodySize(head), 5);
    assert.equal(parseHead("HTTP/1.1 200 OK\r\nConnection: close").keepAlive, false);
    assert.equal(parseHead("HTTP/1.0 200 OK").keepAlive, false);
    assert.equal(bodySize(parseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked")), undefined);
    assert.throws(() => parseHead("HTTP/2 200"), /malformed status line/);
    assert.throws(() => parseHead("HTTP/1.1 200 OK\r\n folded"), /malformed header/);
    assert.throws(
      () => parseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6"),
      /conflicting Content-Length/,
    );
    assert.throws(() => bodySize(parseHead("HTTP/1.1 200 OK\r\nContent-Length: -1")), /malformed/);
  });
});
