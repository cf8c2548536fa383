import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import * as protoLoader from "@grpc/proto-loader";
import { Batch, MAX_CHUNK, SendWindow, dataSerializer } from "./framing.js";
import { PROTO_FILE } from "./protocol.js";

const definition = protoLoader.loadSync(PROTO_FILE, {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const methods = definition["berth.driver.v1.StorageDriver"] as protoLoader.ServiceDefinition;
const chunk = methods.Reader!;
const writerRequest = methods.Writer!;

function batchOf(...parts: Buffer[]): Batch {
  const batch = new Batch(parts.reduce((total, part) => total + part.length, 0));
  for (const part of parts) assert.equal(batch.add(part), part.length);
  return batch;
}

describe("framing: content messages encoded in place", () => {
  for (const size of [0, 1, 127, 128, 16_383, 16_384, 300_000, MAX_CHUNK]) {
    it(`a ${size}-byte Chunk and WriterRequest.data encode as protobuf.js encodes them`, () => {
      const data = randomBytes(size);
      const batch = batchOf(data.subarray(0, size >> 1), data.subarray(size >> 1));
      const fast = dataSerializer(1, chunk.responseSerialize)(batch.message());
      assert.deepEqual(fast, chunk.responseSerialize({ data }));
      assert.deepEqual((chunk.responseDeserialize(fast) as { data: Buffer }).data, data);

      const request = dataSerializer(2, writerRequest.requestSerialize)(batchOf(data).message());
      const decoded = writerRequest.requestDeserialize(request) as {
        request: string;
        data: Buffer;
      };
      assert.equal(decoded.request, "data");
      assert.deepEqual(decoded.data, data);
    });
  }

  it("other messages go to the fallback serializer", () => {
    const serialize = dataSerializer(2, writerRequest.requestSerialize);
    const open = { open: { path: "/a/b", append: true } };
    assert.deepEqual(serialize(open), writerRequest.requestSerialize(open));
    // A plain data message (not a Batch's) is encoded by protobuf.js too, with the same bytes.
    const plain = { data: Buffer.from("plain") };
    assert.deepEqual(serialize(plain), writerRequest.requestSerialize(plain));
  });

  it("a batch takes what fits and copies it (the caller may reuse its chunk)", () => {
    const batch = new Batch(10);
    const source = Buffer.from("0123456789abcdef");
    assert.equal(batch.add(source.subarray(0, 4)), 4);
    assert.equal(batch.add(source.subarray(4)), 6);
    assert.equal(batch.room, 0);
    assert.equal(batch.add(Buffer.from("x")), 0);
    source.fill(0);
    assert.equal(batch.message().data.toString(), "0123456789");
  });
});

describe("framing: SendWindow", () => {
  /** A sink whose writes call back only when `flush` says so. */
  function sink() {
    const pending: ((error?: Error | null) => void)[] = [];
    return {
      written: [] as unknown[],
      write(message: unknown, callback: (error?: Error | null) => void) {
        this.written.push(message);
        pending.push(callback);
      },
      flush(error?: Error) {
        pending.shift()!(error);
      },
    };
  }

  it("lets the sender go on until more than the limit is unflushed, then waits", async () => {
    const window = new SendWindow(100);
    const target = sink();
    window.write(target, "a", 60);
    assert.equal(window.full, false);
    window.write(target, "b", 60);
    assert.equal(window.full, true);
    let roomy = false;
    const room = window.room().then(() => (roomy = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(roomy, false);
    target.flush();
    await room;
    assert.equal(window.full, false);
    assert.deepEqual(target.written, ["a", "b"]);
  });

  it("rejects the waiting sender with the error a write failed with", async () => {
    const window = new SendWindow(10);
    const target = sink();
    window.write(target, "a", 20);
    const room = window.room();
    target.flush(new Error("socket closed"));
    await assert.rejects(room, /socket closed/);
    await assert.rejects(window.room(), /socket closed/);
  });
});
