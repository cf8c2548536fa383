// ApiResponse: the preset headers go out with every form of writeHead and with the implicit header
// of a bare end(), before the handler's own, and alongside headers set with setHeader.

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ApiResponse, presetHeader } from "./response.js";

/** Answers each path with a different way of writing the head. */
function respond(_req: IncomingMessage, res: ServerResponse): void {
  presetHeader(res, "X-Request-Id", "id-1");
  presetHeader(res, "Docker-Distribution-API-Version", "registry/2.0");
  switch (_req.url) {
    case "/object":
      res.writeHead(201, { "Content-Type": "text/plain", "Content-Length": 2 });
      res.end("ok");
      return;
    case "/reason":
      res.writeHead(202, "Taken", { "X-Multi": ["a", "b"], "Content-Length": 0 });
      res.end();
      return;
    case "/flat":
      res.writeHead(200, ["X-One", "1", "Content-Length", "0"]);
      res.end();
      return;
    case "/pairs":
      res.writeHead(200, [
        ["X-One", "1"],
        ["Content-Length", "0"],
      ] as unknown as string[]);
      res.end();
      return;
    case "/progressive":
      res.setHeader("X-Set", "yes");
      res.writeHead(200, { "X-Own": "own", "Content-Length": 0 });
      res.end();
      return;
    default:
      res.statusCode = 204;
      res.end();
  }
}

describe("ApiResponse", () => {
  const server = createServer({ ServerResponse: ApiResponse }, respond);
  let port = 0;
  before(async () => {
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  async function get(path: string): Promise<IncomingMessage> {
    const req = request({ host: "127.0.0.1", port, path, agent: false });
    req.end();
    const [res] = (await once(req, "response")) as [IncomingMessage];
    res.resume();
    await once(res, "end");
    return res;
  }

  it("sends the preset headers with an object, a reason, a flat list and pairs", async () => {
    for (const [path, status] of [
      ["/object", 201],
      ["/reason", 202],
      ["/flat", 200],
      ["/pairs", 200],
    ] as const) {
      const res = await get(path);
      assert.equal(res.statusCode, status, path);
      assert.equal(res.headers["x-request-id"], "id-1", path);
      assert.equal(res.headers["docker-distribution-api-version"], "registry/2.0", path);
    }
    const reason = await get("/reason");
    assert.equal(reason.statusMessage, "Taken");
    assert.equal(reason.headers["x-multi"], "a, b");
    assert.equal((await get("/flat")).headers["x-one"], "1");
    assert.equal((await get("/pairs")).headers["x-one"], "1");
  });

  it("sends them with the implicit header of a bare end() and beside setHeader's", async () => {
    const bare = await get("/bare");
    assert.equal(bare.statusCode, 204);
    assert.equal(bare.headers["x-request-id"], "id-1");
    const progressive = await get("/progressive");
    assert.equal(progressive.headers["x-set"], "yes");
    assert.equal(progressive.headers["x-own"], "own");
    assert.equal(progressive.headers["x-request-id"], "id-1");
    assert.equal(progressive.headers["docker-distribution-api-version"], "registry/2.0");
  });

  it("falls back to setHeader on a plain ServerResponse", async () => {
    const plain = createServer(respond);
    plain.listen(0, "127.0.0.1");
    await once(plain, "listening");
    try {
      const req = request({
        host: "127.0.0.1",
        port: (plain.address() as AddressInfo).port,
        path: "/object",
        agent: false,
      });
      req.end();
      const [res] = (await once(req, "response")) as [IncomingMessage];
      res.resume();
      assert.equal(res.headers["x-request-id"], "id-1");
      assert.equal(res.headers["content-type"], "text/plain");
    } finally {
      plain.close();
    }
  });
});
