// BitTorrent metainfo of one blob (BEP 3): its length, piece length and the SHA-1 of every piece,
// named by the blob's digest. The info dictionary's SHA-1 is the swarm's info hash. The origin
// computes it once per blob, as it streams the blob, and keeps it beside the blob (paths.ts).

import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import bencode from "bencode";

const MiB = 1024 * 1024;
/** SHA-1 size: each piece's hash in `pieces`. */
const HASH = 20;

/** A blob's torrent. */
export interface Metainfo {
  /** `sha256:<hex>` of the whole blob: checked before the blob enters a CAS. */
  digest: string;
  length: number;
  pieceLength: number;
  /** The pieces' SHA-1 hashes, 20 bytes each. */
  pieces: Buffer;
  /** SHA-1 of the bencoded info dictionary, hex. */
  infoHash: string;
}

/**
 * Pieces of 1 MiB to 4 MiB, at most about 128 per blob: enough for peers to trade early, few
 * enough that piece bookkeeping (have messages, picking) stays small.
 */
export function pieceLengthFor(length: number): number {
  let pieceLength = MiB;
  while (pieceLength < 4 * MiB && length / pieceLength > 128) pieceLength *= 2;
  return pieceLength;
}

export function pieceCount(meta: Pick<Metainfo, "length" | "pieceLength">): number {
  return Math.max(1, Math.ceil(meta.length / meta.pieceLength));
}

/** Bytes of piece `index` (the last one is shorter). */
export function pieceSize(meta: Pick<Metainfo, "length" | "pieceLength">, index: number): number {
  return Math.min(meta.pieceLength, meta.length - index * meta.pieceLength);
}

function infoDictionary(meta: Omit<Metainfo, "infoHash">): Record<string, unknown> {
  return {
    length: meta.length,
    name: meta.digest.replace(":", "-"),
    "piece length": meta.pieceLength,
    pieces: meta.pieces,
  };
}

function withInfoHash(meta: Omit<Metainfo, "infoHash">): Metainfo {
  const infoHash = createHash("sha1")
    .update(bencode.encode(infoDictionary(meta)))
    .digest("hex");
  return { ...meta, infoHash };
}

/** Hashes `stream` (the blob `digest`) into its metainfo, checking the blob's digest too. */
export async function computeMetainfo(
  digest: string,
  stream: Readable,
  pieceLength: number,
): Promise<Metainfo> {
  const whole = createHash("sha256");
  const hashes: Buffer[] = [];
  let piece = createHash("sha1");
  let inPiece = 0;
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    whole.update(chunk);
    length += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(pieceLength - inPiece, chunk.length - at);
      piece.update(chunk.subarray(at, at + take));
      inPiece += take;
      at += take;
      if (inPiece === pieceLength) {
        hashes.push(piece.digest());
        piece = createHash("sha1");
        inPiece = 0;
      }
    }
  }
  if (inPiece > 0 || length === 0) hashes.push(piece.digest());
  const actual = `sha256:${whole.digest("hex")}`;
  if (actual !== digest) throw new Error(`blob ${digest} hashes to ${actual}`);
  return withInfoHash({ digest, length, pieceLength, pieces: Buffer.concat(hashes) });
}

/** The .torrent file of `meta` (bencoded, BEP 3). */
export function encodeMetainfo(meta: Metainfo): Buffer {
  return Buffer.from(bencode.encode({ info: infoDictionary(meta) }));
}

/** Parses a .torrent file said to describe `digest`; throws naming what is wrong. */
export function decodeMetainfo(data: Uint8Array, digest: string): Metainfo {
  const torrent = bencode.decode(data) as { info?: Record<string, unknown> } | undefined;
  const info = torrent?.info;
  const length = info?.length;
  const pieceLength = info?.["piece length"];
  const pieces = info?.pieces;
  const name = info?.name;
  if (
    typeof length !== "number" ||
    typeof pieceLength !== "number" ||
    !(pieces instanceof Uint8Array) ||
    !(name instanceof Uint8Array) ||
    length < 0 ||
    pieceLength <= 0
  ) {
    throw new Error(`metainfo of ${digest}: not a single-file torrent`);
  }
  if (Buffer.from(name).toString("utf8") !== digest.replace(":", "-")) {
    throw new Error(`metainfo of ${digest}: names another blob`);
  }
  const meta = { digest, length, pieceLength, pieces: Buffer.from(pieces) };
  if (meta.pieces.length !== pieceCount(meta) * HASH) {
    throw new Error(
      `metainfo of ${digest}: ${meta.pieces.length / HASH} piece hashes for ${pieceCount(meta)} pieces`,
    );
  }
  return withInfoHash(meta);
}

/** True when `blocks`, joined, are piece `index` of `meta`. */
export function pieceMatches(meta: Metainfo, index: number, blocks: Uint8Array[]): boolean {
  const expected = meta.pieces.subarray(index * HASH, (index + 1) * HASH);
  const hash = createHash("sha1");
  for (const block of blocks) hash.update(block);
  return hash.digest().equals(expected);
}
