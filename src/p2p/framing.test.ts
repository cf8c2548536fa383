import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { MessageFramer } from "./framing.js";

function handshake(): Buffer {
  const pstr = Buffer.from("BitTorrent protocol");
  return Buffer.concat([Buffer.from([pstr.length]), pstr, Buffer.alloc(8), randomBytes(40)]);
}

function message(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(payload.length);
  return Buffer.concat([prefix, payload]);
}

/** Writes `chunks` into a framer and collects what it passes on. */
async function frame(chunks: Buffer[], max = 1024 * 1024): Promise<Buffer[]> {
  const framer = new MessageFramer(max);
  const out: Buffer[] = [];
  framer.on("data", (chunk: Buffer) => out.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    framer.once("end", resolve);
    framer.once("error", reject);
  });
  for (const chunk of chunks) framer.write(chunk);
  framer.end();
  await ended;
  return out;
}

/** Where each of `messages` ends in their concatenation. */
function boundaries(messages: Buffer[]): Set<number> {
  const ends = new Set<number>();
  let at = 0;
  for (const part of messages) ends.add((at += part.length));
  return ends;
}

describe("MessageFramer", () => {
  it("passes the handshake and then whole messages only, however the bytes arrive", async () => {
    const messages = [
      handshake(),
      message(Buffer.alloc(0)), // keep-alive
      message(Buffer.from([1])), // unchoke
      message(randomBytes(9 + 128 * 1024)), // a piece
      message(randomBytes(5)),
      message(randomBytes(9 + 70_000)),
    ];
    const stream = Buffer.concat(messages);
    const ends = boundaries(messages);
    for (const size of [1, 3, 1448, 16 * 1024, 65_536, stream.length]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length; at += size) chunks.push(stream.subarray(at, at + size));
      const out = await frame(chunks);
      assert.deepEqual(Buffer.concat(out), stream, `reads of ${size} bytes`);
      let at = 0;
      for (const chunk of out) {
        at += chunk.length;
        assert.ok(ends.has(at), `reads of ${size}: a chunk ends inside a message (at ${at})`);
      }
    }
  });

  it("does not copy a read that holds whole messages", async () => {
    const whole = Buffer.concat([handshake(), message(randomBytes(100)), message(randomBytes(7))]);
    const [out] = await frame([whole]);
    assert.equal(out!.buffer, whole.buffer);
    assert.equal(out!.length, whole.length);
  });

  it("refuses a message longer than its limit, naming its length", async () => {
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(0x7fffffff);
    await assert.rejects(frame([handshake(), huge], 1000), /2147483647 bytes \(at most 1000\)/);
  });
});
