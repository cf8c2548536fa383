import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RegistryClient } from "./client.js";
import { startSink } from "./sink.js";
import { digestOf } from "./workloads.js";

describe("the bench's sink for the client warm-up", () => {
  it("takes monolithic pushes from the bench's client, each to an upload of its own", async () => {
    const sink = await startSink();
    const client = new RegistryClient(sink.url);
    try {
      const bytes = Buffer.alloc(4096, 1);
      // pushBytes fails unless the POST answers 202 with a Location and the PUT 201.
      await Promise.all([1, 2, 3].map(() => client.pushBytes("a/b", digestOf(bytes), bytes)));
      const first = await fetch(`${sink.url}/v2/a/b/blobs/uploads/`, { method: "POST" });
      const second = await fetch(`${sink.url}/v2/a/b/blobs/uploads/`, { method: "POST" });
      assert.equal(first.status, 202);
      assert.notEqual(first.headers.get("location"), second.headers.get("location"));
      const location = new URL(first.headers.get("location") ?? "", sink.url);
      location.searchParams.set("digest", digestOf(bytes));
      const put = await fetch(location, { method: "PUT", body: bytes });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get("docker-content-digest"), digestOf(bytes));
    } finally {
      client.close();
      await sink.stop();
    }
  });

  it("answers what it does not take with 404", async () => {
    const sink = await startSink();
    try {
      assert.equal((await fetch(`${sink.url}/v2/a/b/blobs/sha256:00`)).status, 404);
      const patch = await fetch(`${sink.url}/v2/`, { method: "PATCH", body: Buffer.alloc(10) });
      assert.equal(patch.status, 404);
    } finally {
      await sink.stop();
    }
  });
});
