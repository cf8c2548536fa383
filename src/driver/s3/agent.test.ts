// ReusedBufferAgent against a local HTTP server: the bytes a consumer holds stay intact while the
// socket reads the next ones into its one buffer, backpressure pauses and resumes such a socket,
// kept-alive sockets serve later requests, and a body cut short is an error, not a short read.
// (On the real gateway, through the driver: s3.test.ts's ranged reads.)

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { get, createServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { connectReadingIntoOwnBuffer, ReusedBufferAgent } from "./agent.js";

const MiB = 1024 * 1024;

describe("ReusedBufferAgent", () => {
  const content = randomBytes(16 * MiB + 777);
  let server: Server;
  let base: string;
  let connections = 0;

  before(async () => {
    server = createServer((request, response) => {
      if (request.url === "/cut") {
        response.writeHead(200, { "content-length": content.length });
        response.write(content.subarray(0, MiB), () => response.destroy());
        return;
      }
      response.writeHead(200, { "content-length": content.length });
      // Writes of uneven sizes, so that reads end anywhere in the body.
      let at = 0;
      const next = () => {
        while (at < content.length) {
          const size = 1000 + ((at * 7) % 90_000);
          const more = response.write(content.subarray(at, at + size));
          at += size;
          if (!more) return void response.once("drain", next);
        }
        response.end();
      };
      next();
    });
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const request = (agent: ReusedBufferAgent, path: string) =>
    new Promise<IncomingMessage>((resolve, reject) =>
      get(`${base}${path}`, { agent }, resolve).on("error", reject),
    );

  it("keeps every chunk a slow consumer holds intact, through pauses, on a kept-alive socket", async () => {
    const agent = new ReusedBufferAgent({ keepAlive: true, maxSockets: 1 });
    connections = 0;
    try {
      for (let round = 0; round < 2; round++) {
        const response = await request(agent, "/");
        const chunks: Buffer[] = [];
        await new Promise<void>((resolve, reject) => {
          response.on("data", (chunk: Buffer) => {
            chunks.push(chunk);
            // Hold the response now and then: the socket stops reading and starts again.
            if (chunks.length % 16 === 0) {
              response.pause();
              setTimeout(() => response.resume(), 1);
            }
          });
          response.once("end", resolve);
          response.once("error", reject);
        });
        // Compared only now, long after the socket read the later bytes into its buffer.
        assert.ok(Buffer.concat(chunks).equals(content), `round ${round}: the bytes differ`);
      }
      assert.equal(connections, 1, "the second request reused the kept-alive socket");
    } finally {
      agent.destroy();
    }
  });

  it("a body cut short fails the response instead of ending it", async () => {
    const agent = new ReusedBufferAgent({ keepAlive: true });
    try {
      const response = await request(agent, "/cut");
      let received = 0;
      const outcome = await new Promise<string>((resolve) => {
        response.on("data", (chunk: Buffer) => (received += chunk.length));
        response.once("end", () => resolve("end"));
        response.once("error", () => resolve("error"));
        response.once("aborted", () => resolve("error"));
      });
      assert.equal(outcome, "error");
      assert.ok(received < content.length);
    } finally {
      agent.destroy();
    }
  });
});

describe("connectReadingIntoOwnBuffer", () => {
  it("reads into one buffer of the size it is given, every read a view of it", async () => {
    const content = randomBytes(4 * MiB + 333);
    const server = createTcpServer((socket) => socket.end(content));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      for (const readBytes of [64 * 1024, 256 * 1024]) {
        const socket = connectReadingIntoOwnBuffer({ host: "127.0.0.1", port }, readBytes);
        const copies: Buffer[] = [];
        const underlying = new Set<ArrayBufferLike>();
        let largest = 0;
        await new Promise<void>((resolve, reject) => {
          socket.on("data", (chunk: Buffer) => {
            underlying.add(chunk.buffer);
            assert.equal(chunk.buffer.byteLength, readBytes, "the view is of a buffer that size");
            largest = Math.max(largest, chunk.length);
            copies.push(Buffer.from(chunk));
          });
          socket.once("end", resolve);
          socket.once("error", reject);
        });
        socket.destroy();
        assert.equal(underlying.size, 1, `${readBytes}: every read went into the same buffer`);
        assert.ok(largest <= readBytes, `${readBytes}: a read of ${largest} bytes`);
        assert.ok(Buffer.concat(copies).equals(content), `${readBytes}: the bytes differ`);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
