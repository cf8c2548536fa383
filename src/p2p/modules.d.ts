// Types of the two JavaScript packages Berth's peer-to-peer transfer uses that ship none: only what
// Berth calls.

declare module "bencode" {
  const bencode: {
    encode(value: unknown): Uint8Array;
    decode(data: Uint8Array): unknown;
  };
  export default bencode;
}

declare module "bittorrent-protocol" {
  import { Duplex } from "node:stream";
  import type BitField from "bitfield";

  /** One BitTorrent peer connection (BEP 3 wire protocol) as a duplex stream. */
  export default class Wire extends Duplex {
    constructor(type?: string);
    peerId: string | null;
    amChoking: boolean;
    amInterested: boolean;
    peerChoking: boolean;
    peerInterested: boolean;
    peerPieces: BitField;
    requests: unknown[];
    uploaded: number;
    downloaded: number;
    handshake(infoHash: string, peerId: string, extensions?: Record<string, boolean>): void;
    bitfield(bitfield: Uint8Array | BitField): void;
    have(index: number): void;
    choke(): void;
    unchoke(): void;
    interested(): void;
    uninterested(): void;
    request(
      index: number,
      offset: number,
      length: number,
      callback: (error: Error | null, block?: Uint8Array) => void,
    ): void;
    setTimeout(ms: number, unref?: boolean): void;
    setKeepAlive(enable: boolean): void;
    destroy(): this;
  }
}
