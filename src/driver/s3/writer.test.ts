// The s3 writer's commitToIfAbsent against a fake client (a unit test of writer.ts alone; the real
// gateway is s3.test.ts's): the conditional PutObject and how each answer to it is taken. A 412 is
// a stored object, kept; a 409 (another conditional write in flight, which may yet fail) and a 501
// (a store without conditional writes) are looked at with a HeadObject before a plain write, and
// after a 501 no conditional write is sent again.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { S3Client } from "@aws-sdk/client-s3";
import type { StoragePath } from "../driver.js";
import type { WriterContext } from "./uploads.js";
import { resumeWriter } from "./writer.js";

/** An error shaped as the SDK's, with an HTTP status. */
function sdkError(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

/** A fake S3 whose conditional PutObject answers `conditional`; records what was sent. */
function fakeContext(conditional: "ok" | 412 | 409 | 501, stored: boolean) {
  const sent: string[] = [];
  const context: WriterContext = {
    bucket: "bucket",
    chunkSize: 5 * 1024 * 1024,
    objectSettings: {},
    conditionalPuts: { refused: false },
    client: {
      send: (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        const name = command.constructor.name.replace(/Command$/, "");
        const conditionalPut = name === "PutObject" && command.input.IfNoneMatch === "*";
        sent.push(conditionalPut ? "PutObject If-None-Match" : name);
        if (name === "GetObject") return Promise.reject(sdkError("NoSuchKey", 404));
        if (name === "ListMultipartUploads") return Promise.resolve({ Uploads: [] });
        if (conditionalPut && conditional !== "ok") {
          return Promise.reject(sdkError(`Status${conditional}`, conditional));
        }
        return Promise.resolve({});
      },
    } as unknown as S3Client,
    objects: {
      keyOf: (path: StoragePath) => path.slice(1),
      exists: () => {
        sent.push("HeadObject");
        return Promise.resolve(stored);
      },
      move: () => Promise.reject(new Error("not expected")),
      remove: () => Promise.reject(new Error("not expected")),
    },
  };
  return { context, sent };
}

async function publish(context: WriterContext): Promise<boolean> {
  const writer = await resumeWriter(context, "/up/data", "up/data", undefined, true);
  await writer.write(Buffer.from("content"));
  return writer.commitToIfAbsent!("/blobs/ab/data");
}

describe("s3 writer commitToIfAbsent", () => {
  it("publishes small content with one conditional PutObject", async () => {
    const { context, sent } = fakeContext("ok", false);
    assert.equal(await publish(context), true);
    assert.deepEqual(sent, ["GetObject", "ListMultipartUploads", "PutObject If-None-Match"]);
  });

  it("takes a 412 for a stored object and keeps it, writing nothing", async () => {
    const { context, sent } = fakeContext(412, true);
    assert.equal(await publish(context), false);
    assert.deepEqual(sent.slice(2), ["PutObject If-None-Match"]);
  });

  it("after a 409 looks before a plain write, and never takes the write in flight for a stored object", async () => {
    const missing = fakeContext(409, false);
    assert.equal(await publish(missing.context), true);
    assert.deepEqual(missing.sent.slice(2), ["PutObject If-None-Match", "HeadObject", "PutObject"]);
    const found = fakeContext(409, true);
    assert.equal(await publish(found.context), false);
    assert.deepEqual(found.sent.slice(2), ["PutObject If-None-Match", "HeadObject"]);
    // A 409 says nothing about the store: conditional writes go on.
    assert.equal(found.context.conditionalPuts.refused, false);
  });

  it("after a 501 looks before a plain write, and sends no conditional write again", async () => {
    const { context, sent } = fakeContext(501, false);
    assert.equal(await publish(context), true);
    assert.deepEqual(sent.slice(2), ["PutObject If-None-Match", "HeadObject", "PutObject"]);
    sent.length = 0;
    assert.equal(await publish(context), true);
    assert.deepEqual(sent.slice(2), ["HeadObject", "PutObject"]);
  });
});
