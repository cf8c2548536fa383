// Whole BitTorrent messages for `bittorrent-protocol`'s wire. The wire joins every chunk that
// arrives into the bytes it already holds before it parses (one copy of the partial message per
// socket read), so a 128 KiB piece message arriving in 40 reads was copied 40 times: 5.7% of an
// agent's CPU in its profile, and most of its garbage. This stream sits between the socket and the
// wire and hands it only whole messages: a read holding whole messages passes through without a
// copy, a message spanning reads is joined once. It also bounds what a peer can make us buffer.

import { Transform, type TransformCallback } from "node:stream";

/** Splits a peer's byte stream into whole messages (the handshake, then length-prefixed ones). */
export class MessageFramer extends Transform {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of the message being read (with its prefix); 0 until its prefix is here. */
  private needed = 0;
  private handshaken = false;

  /** `maxMessage`: the longest message accepted (bytes after the length prefix). */
  constructor(private readonly maxMessage: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    // `ready`: bytes at the front that form whole messages.
    let ready = 0;
    for (;;) {
      if (this.needed === 0) {
        const header = this.handshaken ? 4 : 1;
        if (this.buffered - ready < header) break;
        const length = this.handshaken
          ? this.byteAt(ready) * 2 ** 24 +
            (this.byteAt(ready + 1) << 16) +
            (this.byteAt(ready + 2) << 8) +
            this.byteAt(ready + 3)
          : // The handshake: <pstrlen><pstr><8 reserved><20 info hash><20 peer id>.
            this.byteAt(ready) + 48;
        if (length > this.maxMessage) {
          done(new Error(`a peer sent a message of ${length} bytes (at most ${this.maxMessage})`));
          return;
        }
        this.needed = header + length;
        this.handshaken = true;
      }
      if (this.buffered - ready < this.needed) break;
      ready += this.needed;
      this.needed = 0;
    }
    if (ready > 0) this.push(this.splitOff(ready));
    done();
  }

  /** The byte at `at` of what is buffered. */
  private byteAt(at: number): number {
    for (const chunk of this.chunks) {
      if (at < chunk.length) return chunk[at]!;
      at -= chunk.length;
    }
    throw new RangeError("past the buffered bytes");
  }

  /** Removes and returns the first `length` buffered bytes, copying only when they span chunks. */
  private splitOff(length: number): Buffer {
    this.buffered -= length;
    const first = this.chunks[0]!;
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    let used = 0;
    while (filled < length) {
      const chunk = this.chunks[used]!;
      const part = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) used += 1;
      else this.chunks[used] = chunk.subarray(part);
    }
    this.chunks.splice(0, used);
    return out;
  }
}
