// Blob content for the bench: unique per run and per blob, cheap to generate, never held whole in
// memory. A registry that has seen a blob before can skip storing it (dedup), so every timed push
// must carry bytes it has never seen; and a 1 GiB blob must not sit in the client's memory, or the
// client's RSS and GC would colour the figures.
//
// A run has a seed. From it comes a 1 MiB pool of pseudo-random bytes (AES-256-CTR keystream).
// Chunk i of blob "label" is a 32-byte stamp, sha256(seed, label, i), followed by the pool rotated
// by an offset taken from the stamp. So every chunk of every blob differs, generating a chunk is
// one small hash and a 1 MiB memcpy, and the same (seed, label) always yields the same bytes: the
// digest is computed in an untimed pass and the bytes regenerated while they are sent.

import { createCipheriv, createHash } from "node:crypto";

/** Bytes per generated chunk; chunked pushes use multiples of it. */
export const CHUNK_BYTES = 1024 * 1024;

const STAMP_BYTES = 32;

/** The run's source of unique blobs. */
export class ContentSource {
  readonly seed: Buffer;
  readonly #pool: Buffer;

  constructor(seed: Buffer) {
    this.seed = seed;
    const key = createHash("sha256").update(seed).digest();
    const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
    this.#pool = Buffer.concat([cipher.update(Buffer.alloc(CHUNK_BYTES)), cipher.final()]);
  }

  /** The blob named `label` (unique within the run) of `size` bytes. */
  blob(label: string, size: number): BlobContent {
    return new BlobContent(this.seed, this.#pool, label, size);
  }
}

/** One blob's bytes, generated on demand. */
export class BlobContent {
  readonly label: string;
  readonly size: number;
  readonly #seed: Buffer;
  readonly #pool: Buffer;
  #digest: string | undefined;

  constructor(seed: Buffer, pool: Buffer, label: string, size: number) {
    this.#seed = seed;
    this.#pool = pool;
    this.label = label;
    this.size = size;
  }

  /**
   * The bytes of [start, end) as fresh buffers of at most CHUNK_BYTES each. Fresh because a socket
   * may hold a written buffer until it is flushed; reusing one would corrupt what is sent.
   */
  *chunks(start = 0, end = this.size): Generator<Buffer> {
    let position = start;
    while (position < end) {
      const index = Math.floor(position / CHUNK_BYTES);
      const chunkStart = index * CHUNK_BYTES;
      const chunkEnd = Math.min(chunkStart + CHUNK_BYTES, this.size);
      const chunk = this.#chunk(index, chunkEnd - chunkStart);
      const from = position - chunkStart;
      const to = Math.min(end, chunkEnd) - chunkStart;
      yield from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to);
      position = chunkStart + to;
    }
  }

  /** The whole blob in one buffer; only for small blobs. */
  bytes(): Buffer {
    if (this.size > 16 * CHUNK_BYTES) throw new Error(`blob ${this.label} is too big to buffer`);
    return Buffer.concat([...this.chunks()]);
  }

  /** `sha256:<hex>` of the blob, computed on first use (about 1 s per GiB) and kept. */
  digest(): string {
    if (this.#digest === undefined) {
      const hash = createHash("sha256");
      for (const chunk of this.chunks()) hash.update(chunk);
      this.#digest = `sha256:${hash.digest("hex")}`;
    }
    return this.#digest;
  }

  #chunk(index: number, length: number): Buffer {
    const stamp = createHash("sha256")
      .update(this.#seed)
      .update(this.label)
      .update(String(index))
      .digest();
    const chunk = Buffer.allocUnsafeSlow(length);
    stamp.copy(chunk, 0, 0, Math.min(STAMP_BYTES, length));
    if (length <= STAMP_BYTES) return chunk;
    const pool = this.#pool;
    const offset = stamp.readUInt32BE(0) % pool.length;
    const wanted = length - STAMP_BYTES;
    const head = Math.min(wanted, pool.length - offset);
    pool.copy(chunk, STAMP_BYTES, offset, offset + head);
    if (head < wanted) pool.copy(chunk, STAMP_BYTES + head, 0, wanted - head);
    return chunk;
  }
}
