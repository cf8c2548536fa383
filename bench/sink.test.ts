import assert from "node:assert/strict";
import { request } from "node:http";
import { describe, it } from "node:test";
import { RegistryClient } from "./client.js";
import { startSink } from "./sink.js";
import { digestOf } from "./workloads.js";

/** One request to the sink: its status and headers. */
function send(url: string, method: string, body?: Buffer) {
  return new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
    const outgoing = request(url, { method }, (response) => {
      response.resume();
      response.once("end", () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers }),
      );
    });
    outgoing.once("error", reject);
    outgoing.end(body);
  });
}

describe("the bench's sink for the client warm-up", () => {
  it("takes monolithic pushes from the bench's client, each to an upload of its own", async () => {
    const sink = await startSink();
    const client = new RegistryClient(sink.url);
    try {
      const bytes = Buffer.alloc(4096, 1);
      // pushBytes fails unless the POST answers 202 with a Location and the PUT 201.
      await Promise.all([1, 2, 3].map(() => client.pushBytes("a/b", digestOf(bytes), bytes)));
      const first = await send(`${sink.url}/v2/a/b/blobs/uploads/`, "POST");
      const second = await send(`${sink.url}/v2/a/b/blobs/uploads/`, "POST");
      assert.equal(first.status, 202);
      assert.notEqual(first.headers.location, second.headers.location);
      const location = new URL(String(first.headers.location), sink.url);
      location.searchParams.set("digest", digestOf(bytes));
      const put = await send(location.href, "PUT", bytes);
      assert.equal(put.status, 201);
      assert.equal(put.headers["docker-content-digest"], digestOf(bytes));
    } finally {
      client.close();
      await sink.stop();
    }
  });

  it("answers what it does not take with 404", async () => {
    const sink = await startSink();
    try {
      assert.equal((await send(`${sink.url}/v2/a/b/blobs/sha256:00`, "GET")).status, 404);
      assert.equal((await send(`${sink.url}/v2/`, "PATCH", Buffer.alloc(10))).status, 404);
    } finally {
      await sink.stop();
    }
  });
});
