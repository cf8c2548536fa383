// The call stream's hand-written codec against protobuf.js (through proto-loader, as grpc-js and
// any generated code encode the same .proto): what one side encodes, the other decodes to the same
// call, and for messages without default values the bytes are the same.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as protoLoader from "@grpc/proto-loader";
import {
  decodeCallReply,
  decodeCallRequest,
  encodeCallReply,
  encodeCallRequest,
  type CallMessage,
} from "./call-codec.js";
import { LOADER_OPTIONS, PROTO_FILE, type CallKind } from "./protocol.js";

/** protobuf.js's serializers of the Calls rpc, loaded as driverService loads them. */
function protobufjs() {
  const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
  const service = definition["berth.driver.v1.StorageDriver"] as protoLoader.ServiceDefinition;
  return service.Calls!;
}

const calls = protobufjs();

const long = "/docker/registry/v2/" + "a".repeat(200);
const content = Buffer.from(Array.from({ length: 20000 }, (_, i) => i % 251));

/** Requests by kind, every field set to something other than its default. */
const REQUESTS: [CallKind | "cancel", Record<string, unknown>][] = [
  ["getContent", { path: "/a/b" }],
  ["putContent", { path: "/a/é/ü", content: Buffer.from("hello"), unsynced: true }],
  // The same message as PutContent's (a driver ignores `unsynced` there).
  ["putContentIfAbsent", { path: long, content, unsynced: true }],
  ["stat", { path: "/x" }],
  ["list", { path: "/" + "é".repeat(80) }],
  ["move", { sourcePath: "/u/data", destPath: "/blobs/sha256/ab/data" }],
  ["delete", { path: "/u/startedat" }],
  ["redirectUrl", { path: "/r", method: "HEAD", expiresIn: 1200 }],
  ["localFile", { path: "/l" }],
  [
    "write",
    {
      path: "/w",
      append: true,
      content: Buffer.alloc(130, 7),
      action: "COMMIT",
      movedNext: true,
      commitTo: "/blobs/sha256/ab/" + "é".repeat(70) + "/data",
      ifAbsent: true,
    },
  ],
  ["touch", { path: "/berth/gc/refreshed/sha256/ab" }],
  ["cancel", {}],
];

/** Replies by kind, every field set to something other than its default. */
const REPLIES: [CallKind | "error", Record<string, unknown>][] = [
  ["getContent", { content }],
  ["putContent", {}],
  ["putContentIfAbsent", { stored: true }],
  ["stat", { path: "/s", size: 5 * 2 ** 32 + 17, modTimeMs: 1_764_000_000_123, isDir: true }],
  ["list", { paths: ["/a", long, "/ü"] }],
  ["move", {}],
  ["delete", {}],
  ["redirectUrl", { url: "https://example.com/x?y=z" }],
  ["localFile", { file: "/srv/berth/x/data", size: 4096 }],
  ["write", { size: 2 ** 40, kept: true }],
  ["touch", {}],
  [
    "error",
    {
      status: 5,
      message: "path not found: /x",
      metadata: { "berth-error-code": "ERR_DRIVER_PATH_NOT_FOUND", "berth-error-path": long },
    },
  ],
];

/** What proto-loader gives for a message of `kind` with `body` (`call` or `reply` the oneof). */
function loaded(oneof: "call" | "reply", id: number, kind: string, body: object): object {
  return { id, [oneof]: kind, [kind]: body };
}

/** A proto-loader object's call, as call-codec.ts spells it. */
function asCallMessage(oneof: "call" | "reply", object: Record<string, unknown>): CallMessage {
  const kind = object[oneof] as CallKind;
  return { id: object.id as number, kind, body: object[kind] as Record<string, unknown> };
}

describe("call stream codec", () => {
  it("encodes requests as protobuf.js does, byte for byte", () => {
    for (const [kind, body] of REQUESTS) {
      const ours = encodeCallRequest({ id: 300 + kind.length, kind, body });
      const theirs = calls.requestSerialize(loaded("call", 300 + kind.length, kind, body));
      assert.deepEqual(ours, theirs, kind);
    }
  });

  it("encodes replies as protobuf.js does, byte for byte", () => {
    for (const [kind, body] of REPLIES) {
      const ours = encodeCallReply({ id: 2 ** 33 + 1, kind, body });
      const theirs = calls.responseSerialize(loaded("reply", 2 ** 33 + 1, kind, body));
      assert.deepEqual(ours, theirs, kind);
    }
  });

  it("decodes what protobuf.js encodes, with the same fields", () => {
    for (const [kind, body] of REQUESTS) {
      const bytes = calls.requestSerialize(loaded("call", 7, kind, body));
      assert.deepEqual(decodeCallRequest(bytes), { id: 7, kind, body }, kind);
      assert.deepEqual(
        decodeCallRequest(bytes),
        asCallMessage("call", calls.requestDeserialize(bytes) as Record<string, unknown>),
      );
    }
    for (const [kind, body] of REPLIES) {
      const bytes = calls.responseSerialize(loaded("reply", 8, kind, body));
      assert.deepEqual(decodeCallReply(bytes), { id: 8, kind, body }, kind);
    }
  });

  it("fills in proto3's defaults and leaves them out, as protobuf.js reads them", () => {
    const requests: [CallKind, Record<string, unknown>][] = [
      ["putContent", { path: "/p", content: Buffer.alloc(0), unsynced: false }],
      ["redirectUrl", { path: "/r", method: "", expiresIn: 0 }],
      [
        "write",
        {
          path: "/w",
          append: false,
          content: Buffer.alloc(0),
          action: "CLOSE",
          movedNext: false,
          commitTo: "",
          ifAbsent: false,
        },
      ],
      [
        "write",
        {
          path: "/w",
          append: false,
          content: Buffer.alloc(0),
          action: "ACTION_UNSPECIFIED",
          movedNext: false,
          commitTo: "",
          ifAbsent: false,
        },
      ],
    ];
    for (const [kind, body] of requests) {
      const ours = encodeCallRequest({ id: 1, kind, body });
      assert.deepEqual(decodeCallRequest(ours), { id: 1, kind, body });
      assert.deepEqual(
        asCallMessage("call", calls.requestDeserialize(ours) as Record<string, unknown>),
        { id: 1, kind, body },
      );
    }
    const replies: [CallKind | "error", Record<string, unknown>][] = [
      ["stat", { path: "/d", size: 0, modTimeMs: 0, isDir: false }],
      ["list", { paths: [] }],
      ["list", { paths: ["", "/a"] }],
      ["write", { size: 0, kept: false }],
      ["localFile", { file: "", size: 0 }],
      ["putContentIfAbsent", { stored: false }],
      ["error", { status: 2, message: "", metadata: {} }],
    ];
    for (const [kind, body] of replies) {
      const ours = encodeCallReply({ id: 2, kind, body });
      assert.deepEqual(decodeCallReply(ours), { id: 2, kind, body }, kind);
      assert.deepEqual(
        asCallMessage("reply", calls.responseDeserialize(ours) as Record<string, unknown>),
        { id: 2, kind, body },
        kind,
      );
    }
  });

  it("reads negative int64 values as protobuf.js writes them", () => {
    const body = { path: "/r", method: "GET", expiresIn: -1 };
    const theirs = calls.requestSerialize(loaded("call", 3, "redirectUrl", body));
    assert.deepEqual(decodeCallRequest(theirs).body, body);
    assert.deepEqual(encodeCallRequest({ id: 3, kind: "redirectUrl", body }), theirs);
    const stat = { path: "/n", size: -5, modTimeMs: -1_000_000_000_000, isDir: true };
    const bytes = calls.responseSerialize(loaded("reply", 4, "stat", stat));
    assert.deepEqual(decodeCallReply(bytes).body, stat);
    assert.deepEqual(encodeCallReply({ id: 4, kind: "stat", body: stat }), bytes);
  });

  it("skips fields it does not know and names no kind for a case it does not know", () => {
    const known = encodeCallRequest({ id: 9, kind: "stat", body: { path: "/k" } });
    // Field 20 (varint 150), field 21 (fixed32), field 22 (fixed64) and field 13 (a message).
    const extra = Buffer.from([0xa0, 0x01, 0x96, 0x01, 0xad, 0x01, 1, 2, 3, 4]);
    const fixed64 = Buffer.from([0xb1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]);
    const decoded = decodeCallRequest(Buffer.concat([extra, known, fixed64]));
    assert.deepEqual(decoded, { id: 9, kind: "stat", body: { path: "/k" } });
    const unknownCase = Buffer.from([0x08, 0x05, 0x6a, 0x02, 0x0a, 0x00]);
    assert.deepEqual(decodeCallRequest(unknownCase), { id: 5, kind: undefined, body: {} });
  });

  it("writes and reads batches (1.5) as protobuf.js does", () => {
    const stat = REPLIES.find(([kind]) => kind === "stat")![1];
    const error = REPLIES.find(([kind]) => kind === "error")![1];
    const request = encodeCallRequest({
      id: 1,
      kind: "stat",
      body: { path: "/a" },
      batch: [
        { id: 2, kind: "cancel", body: {} },
        { id: 3, kind: "putContent", body: { path: "/b", content, unsynced: true } },
      ],
    });
    const read = calls.requestDeserialize(request) as Record<string, unknown>;
    assert.deepEqual(asCallMessage("call", read), { id: 1, kind: "stat", body: { path: "/a" } });
    assert.deepEqual(
      (read.batch as Record<string, unknown>[]).map((entry) => asCallMessage("call", entry)),
      [
        { id: 2, kind: "cancel", body: {} },
        { id: 3, kind: "putContent", body: { path: "/b", content, unsynced: true } },
      ],
    );
    const replies = [loaded("reply", 5, "stat", stat), loaded("reply", 6, "error", error)];
    const bytes = calls.responseSerialize({ ...loaded("reply", 4, "move", {}), batch: replies });
    const reply: CallMessage<CallKind | "error"> = {
      id: 4,
      kind: "move",
      body: {},
      batch: [
        { id: 5, kind: "stat", body: stat },
        { id: 6, kind: "error", body: error },
      ],
    };
    assert.deepEqual(decodeCallReply(bytes), reply);
    assert.deepEqual(encodeCallReply(reply), bytes);
  });

  it("refuses truncated messages", () => {
    const bytes = encodeCallRequest({
      id: 1,
      kind: "putContent",
      body: { path: "/t", content: Buffer.alloc(300) },
    });
    for (const cut of [1, 3, 10, bytes.length - 1]) {
      assert.throws(() => decodeCallRequest(bytes.subarray(0, cut)), /truncated/);
    }
  });
});
