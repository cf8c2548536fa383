// Over 400 lines: the BitTorrent peer (one listener, many swarms) and a swarm's piece exchange
// are one piece of logic: choking, interest, piece picking and serving share each wire's state.
//
// A BitTorrent peer (BEP 3) on `bittorrent-protocol`'s wire: one TCP listener, one swarm per blob
// (info hash). A swarm downloads the pieces it lacks from every peer that unchokes it, rarest
// first, verifying each piece's SHA-1 before it is written or offered to others, and serves the
// pieces it has to at most `uploadSlots` peers at a time (the origin keeps this small, so that
// peers get most pieces from each other). Peers are found through an HTTP tracker (./tracker.ts).

import { randomBytes } from "node:crypto";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import bencode from "bencode";
import BitField from "bitfield";
import Wire from "bittorrent-protocol";
import { MessageFramer } from "./framing.js";
import { pieceCount, pieceMatches, pieceSize, type Metainfo } from "./metainfo.js";

/**
 * Bytes per request: 128 KiB. BitTorrent clients send 16 KiB and most accept up to 128 KiB; Berth's
 * peers talk to each other only, and the wire's parsing and callbacks cost per message, so fewer,
 * larger messages cost less CPU per byte (16 KiB to 64 KiB: the first 8-agent runs; 128 KiB since
 * the messages reach the wire whole, ./framing.ts).
 */
const BLOCK = 128 * 1024;
/** Largest request served. */
const MAX_REQUEST = 128 * 1024;
/** Pieces requested from one peer at a time. */
const PIPELINE = 2;
/** A request unanswered this long drops the peer (its pieces go to others). */
const REQUEST_TIMEOUT_MS = 15_000;
/** A download with no new piece for this long fails. */
const STALL_MS = 120_000;
/** Announces while downloading come at least this often (seconds). */
const DOWNLOAD_ANNOUNCE_S = 3;

/** Where a swarm's pieces are read from and written to. */
export interface PieceStore {
  read(index: number, offset: number, length: number): Promise<Uint8Array>;
  /** Writes piece `index`, given as its blocks in order (as they came off the wire, uncopied). */
  write(index: number, blocks: Uint8Array[]): Promise<void>;
}

export interface PeerNodeOptions {
  /** The tracker's announce URL. */
  tracker: string;
  /** Address to accept peers on. Default 127.0.0.1. */
  host?: string;
  /** Port to accept peers on; 0 (default) picks one. */
  port?: number;
  /** Peers each swarm serves at once. Default 8. */
  uploadSlots?: number;
  /** 8 characters at the start of the peer id (BEP 20 style). Default "-BE0001-". */
  peerIdPrefix?: string;
}

function percentEncode(bytes: Buffer): string {
  return [...bytes].map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join("");
}

/** Peers of a compact (BEP 23) list. */
function compactPeers(data: Uint8Array): { ip: string; port: number }[] {
  const peers: { ip: string; port: number }[] = [];
  const buffer = Buffer.from(data);
  for (let at = 0; at + 6 <= buffer.length; at += 6) {
    peers.push({
      ip: [...buffer.subarray(at, at + 4)].join("."),
      port: buffer.readUInt16BE(at + 4),
    });
  }
  return peers;
}

/** The BitTorrent wire over `socket`, fed whole messages (./framing.ts). */
function wireOn(socket: Socket): Wire {
  const wire = new Wire();
  // A piece message: 9 bytes of header and a block of at most MAX_REQUEST.
  const framer = new MessageFramer(9 + MAX_REQUEST);
  socket.pipe(framer).pipe(wire).pipe(socket);
  framer.on("error", () => socket.destroy());
  wire.on("error", () => socket.destroy());
  return wire;
}

/** One BitTorrent peer: a listener and the swarms it takes part in. */
export class PeerNode {
  readonly peerId: string;
  readonly tracker: string;
  readonly uploadSlots: number;
  private readonly swarms = new Map<string, Swarm>();
  private readonly sockets = new Set<Socket>();
  private writtenByClosed = 0;
  private closed = false;

  private constructor(
    private readonly server: Server,
    options: PeerNodeOptions,
  ) {
    this.tracker = options.tracker;
    this.uploadSlots = options.uploadSlots ?? 8;
    const prefix = Buffer.from((options.peerIdPrefix ?? "-BE0001-").slice(0, 8).padEnd(8, "-"));
    this.peerId = Buffer.concat([prefix, randomBytes(12)]).toString("hex");
  }

  /** Starts listening. */
  static async start(options: PeerNodeOptions): Promise<PeerNode> {
    const server = createServer();
    const node = new PeerNode(server, options);
    server.on("connection", (socket) => node.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
    });
    return node;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === "object" && address !== null ? address.port : 0;
  }

  /** Bytes this peer sent to others (every connection, open or closed). */
  get uploaded(): number {
    let total = this.writtenByClosed;
    for (const socket of this.sockets) total += socket.bytesWritten;
    return total;
  }

  /** The swarm of `meta`, joined now if it was not; `complete` when `store` holds every piece. */
  join(meta: Metainfo, store: PieceStore, complete: boolean): Swarm {
    if (this.closed) throw new Error("this peer is closed");
    let swarm = this.swarms.get(meta.infoHash);
    if (swarm === undefined) {
      swarm = new Swarm(this, meta, store, complete);
      this.swarms.set(meta.infoHash, swarm);
      swarm.start();
    }
    return swarm;
  }

  /** Leaves the swarm of `infoHash` (closing its connections). */
  leave(infoHash: string): void {
    const swarm = this.swarms.get(infoHash);
    if (swarm === undefined) return;
    this.swarms.delete(infoHash);
    swarm.close();
  }

  /** Stops listening and leaves every swarm. */
  async close(): Promise<void> {
    this.closed = true;
    for (const infoHash of [...this.swarms.keys()]) this.leave(infoHash);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Tracks a socket's bytes. */
  track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("error", () => {});
    socket.once("close", () => {
      this.sockets.delete(socket);
      this.writtenByClosed += socket.bytesWritten;
    });
  }

  private accept(socket: Socket): void {
    this.track(socket);
    if (this.closed) {
      socket.destroy();
      return;
    }
    const wire = wireOn(socket);
    wire.once("handshake", (infoHash: string, peerId: string) => {
      const swarm = this.swarms.get(infoHash);
      if (swarm === undefined || peerId === this.peerId) {
        socket.destroy();
        return;
      }
      wire.handshake(infoHash, this.peerId);
      swarm.attach(wire, socket);
    });
  }
}

/** One blob's swarm as seen by one peer. */
export class Swarm {
  readonly have: BitField;
  private remaining: number;
  private readonly total: number;
  private readonly wires = new Set<Wire>();
  private readonly sockets = new Map<Wire, Socket>();
  /** Pieces being downloaded, and from which wires. */
  private readonly inFlight = new Map<number, Set<Wire>>();
  private readonly assigned = new Map<Wire, Set<number>>();
  private readonly unchoked = new Set<Wire>();
  private waiting: Wire[] = [];
  private readonly dialed = new Set<string>();
  private readonly finishing = new Set<number>();
  private announceTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private lastProgress = Date.now();
  private closed = false;
  private settle!: { resolve: () => void; reject: (error: Error) => void };
  /** Resolves when every piece is here and verified; rejects when the swarm closes first. */
  readonly done: Promise<void>;

  constructor(
    private readonly node: PeerNode,
    readonly meta: Metainfo,
    private readonly store: PieceStore,
    complete: boolean,
  ) {
    this.total = pieceCount(meta);
    this.have = new BitField(this.total);
    if (complete) for (let index = 0; index < this.total; index++) this.have.set(index);
    this.remaining = complete ? 0 : this.total;
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.done.catch(() => {});
    if (complete) this.settle.resolve();
  }

  get complete(): boolean {
    return this.remaining === 0;
  }

  /** Announces now and on a timer; watches for a stalled download. */
  start(): void {
    void this.announce("started");
    if (!this.complete) {
      this.stallTimer = setInterval(() => {
        if (Date.now() - this.lastProgress > STALL_MS) {
          this.fail(new Error(`no piece of ${this.meta.digest} arrived for ${STALL_MS / 1000}s`));
        }
      }, 5_000);
      this.stallTimer.unref();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.announceTimer);
    clearInterval(this.stallTimer);
    this.settle.reject(new Error(`the swarm of ${this.meta.digest} closed`));
    void this.announce("stopped");
    for (const socket of this.sockets.values()) socket.destroy();
  }

  private fail(error: Error): void {
    this.settle.reject(error);
    this.node.leave(this.meta.infoHash);
  }

  private async announce(event?: "started" | "completed" | "stopped"): Promise<void> {
    const query = [
      `info_hash=${percentEncode(Buffer.from(this.meta.infoHash, "hex"))}`,
      `peer_id=${percentEncode(Buffer.from(this.node.peerId, "hex"))}`,
      `port=${this.node.port}`,
      "uploaded=0",
      "downloaded=0",
      `left=${this.complete ? 0 : this.meta.length}`,
      "compact=1",
      ...(event === undefined ? [] : [`event=${event}`]),
    ].join("&");
    let interval = 10;
    try {
      const separator = this.node.tracker.includes("?") ? "&" : "?";
      const response = await fetch(`${this.node.tracker}${separator}${query}`, {
        signal: AbortSignal.timeout(10_000),
      });
      const body = bencode.decode(new Uint8Array(await response.arrayBuffer())) as Record<
        string,
        unknown
      >;
      if (typeof body.interval === "number") interval = body.interval;
      if (body.peers instanceof Uint8Array && event !== "stopped" && !this.closed) {
        for (const peer of compactPeers(body.peers)) this.dial(peer.ip, peer.port);
      }
    } catch {
      // The tracker is unreachable: peers already known keep trading; try again later.
    }
    if (this.closed || event === "stopped") return;
    const seconds = this.complete ? interval : Math.min(interval, DOWNLOAD_ANNOUNCE_S);
    clearTimeout(this.announceTimer);
    this.announceTimer = setTimeout(() => void this.announce(), seconds * 1000);
    this.announceTimer.unref();
  }

  /** Connects to a peer the tracker named (once per address). */
  private dial(ip: string, port: number): void {
    const address = `${ip}:${port}`;
    if (this.dialed.has(address) || this.closed) return;
    this.dialed.add(address);
    const socket = createConnection({ host: ip, port });
    this.node.track(socket);
    socket.once("close", () => this.dialed.delete(address));
    const wire = wireOn(socket);
    wire.once("handshake", (_infoHash: string, peerId: string) => {
      if (peerId === this.node.peerId || this.closed) {
        socket.destroy();
        return;
      }
      this.attach(wire, socket);
    });
    socket.once("connect", () => wire.handshake(this.meta.infoHash, this.node.peerId));
  }

  /** Takes a wire whose handshake is done into the swarm. */
  attach(wire: Wire, socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.wires.add(wire);
    this.sockets.set(wire, socket);
    this.assigned.set(wire, new Set());
    wire.setTimeout(REQUEST_TIMEOUT_MS, true);
    wire.setKeepAlive(true);
    wire.on("timeout", () => socket.destroy());
    wire.on("bitfield", () => this.updateInterest(wire));
    wire.on("have", () => this.updateInterest(wire));
    wire.on("unchoke", () => this.fill(wire));
    wire.on("choke", () => this.releaseAll(wire));
    wire.on("interested", () => this.onInterested(wire));
    wire.on("uninterested", () => this.freeSlot(wire));
    wire.on(
      "request",
      (
        index: number,
        offset: number,
        length: number,
        respond: (error: Error | null, data?: Uint8Array) => void,
      ) => this.serve(index, offset, length, respond),
    );
    let gone = false;
    const leave = (): void => {
      if (gone) return;
      gone = true;
      this.wires.delete(wire);
      this.sockets.delete(wire);
      this.releaseAll(wire);
      this.assigned.delete(wire);
      this.freeSlot(wire);
      this.waiting = this.waiting.filter((other) => other !== wire);
      for (const other of this.wires) this.fill(other);
    };
    wire.once("close", leave);
    socket.once("close", leave);
    wire.bitfield(this.have);
  }

  private hasWanted(wire: Wire): boolean {
    for (let index = 0; index < this.total; index++) {
      if (!this.have.get(index) && wire.peerPieces.get(index)) return true;
    }
    return false;
  }

  private updateInterest(wire: Wire): void {
    if (!this.complete && this.hasWanted(wire)) {
      if (!wire.amInterested) wire.interested();
      this.fill(wire);
    } else if (wire.amInterested) {
      wire.uninterested();
    }
  }

  private onInterested(wire: Wire): void {
    if (this.unchoked.has(wire)) return;
    if (this.unchoked.size < this.node.uploadSlots) {
      this.unchoked.add(wire);
      wire.unchoke();
    } else if (!this.waiting.includes(wire)) {
      this.waiting.push(wire);
    }
  }

  /** A peer we served is done with us (or gone): serve the next one waiting. */
  private freeSlot(wire: Wire): void {
    this.waiting = this.waiting.filter((other) => other !== wire);
    if (!this.unchoked.delete(wire)) return;
    if (this.wires.has(wire) && !wire.amChoking) wire.choke();
    const next = this.waiting.shift();
    if (next !== undefined) this.onInterested(next);
  }

  private serve(
    index: number,
    offset: number,
    length: number,
    respond: (error: Error | null, data?: Uint8Array) => void,
  ): void {
    const inRange =
      index >= 0 &&
      index < this.total &&
      offset >= 0 &&
      length > 0 &&
      length <= MAX_REQUEST &&
      offset + length <= pieceSize(this.meta, index);
    if (!inRange || !this.have.get(index)) {
      respond(new Error(`no block ${index}/${offset}/${length}`));
      return;
    }
    this.store.read(index, offset, length).then(
      (data) => respond(null, data),
      (error: unknown) => respond(error as Error),
    );
  }

  /** Requests pieces from `wire` until its pipeline is full. */
  private fill(wire: Wire): void {
    if (this.complete || this.closed || wire.peerChoking || !this.wires.has(wire)) return;
    const mine = this.assigned.get(wire)!;
    while (mine.size < PIPELINE) {
      const index = this.pick(wire);
      if (index === undefined) return;
      this.fetchPiece(wire, index);
    }
  }

  /** The rarest piece `wire` has that nobody is fetching; in the end game, one being fetched. */
  private pick(wire: Wire): number | undefined {
    let best: number[] = [];
    let bestCount = Infinity;
    const endGame: number[] = [];
    for (let index = 0; index < this.total; index++) {
      if (this.have.get(index) || this.finishing.has(index) || !wire.peerPieces.get(index))
        continue;
      const fetching = this.inFlight.get(index);
      if (fetching !== undefined && fetching.size > 0) {
        if (fetching.size === 1 && !fetching.has(wire)) endGame.push(index);
        continue;
      }
      let count = 0;
      for (const other of this.wires) if (other.peerPieces.get(index)) count++;
      if (count < bestCount) {
        best = [index];
        bestCount = count;
      } else if (count === bestCount) {
        best.push(index);
      }
    }
    const choices = best.length > 0 ? best : endGame;
    if (choices.length === 0) return undefined;
    return choices[Math.floor(Math.random() * choices.length)];
  }

  private fetchPiece(wire: Wire, index: number): void {
    const size = pieceSize(this.meta, index);
    // The blocks are kept as the wire gave them: joining them into one piece buffer cost a fresh
    // 1 MiB allocation and a copy per piece.
    const blocks: Uint8Array[] = [];
    let received = 0;
    let failed = false;
    this.assigned.get(wire)!.add(index);
    let fetching = this.inFlight.get(index);
    if (fetching === undefined) {
      fetching = new Set();
      this.inFlight.set(index, fetching);
    }
    fetching.add(wire);
    for (let offset = 0; offset < size && !failed; offset += BLOCK) {
      const length = Math.min(BLOCK, size - offset);
      wire.request(index, offset, length, (error, block) => {
        if (failed) return;
        if (error !== null || block === undefined || block.length !== length) {
          failed = true;
          this.release(wire, index);
          return;
        }
        blocks[offset / BLOCK] = block;
        received += length;
        if (received === size) this.finishPiece(wire, index, blocks);
      });
    }
  }

  private release(wire: Wire, index: number): void {
    this.assigned.get(wire)?.delete(index);
    const fetching = this.inFlight.get(index);
    fetching?.delete(wire);
    if (fetching?.size === 0) this.inFlight.delete(index);
  }

  private releaseAll(wire: Wire): void {
    for (const index of [...(this.assigned.get(wire) ?? [])]) this.release(wire, index);
  }

  private finishPiece(wire: Wire, index: number, blocks: Uint8Array[]): void {
    this.release(wire, index);
    if (this.have.get(index) || this.finishing.has(index)) {
      this.fill(wire);
      return;
    }
    if (!pieceMatches(this.meta, index, blocks)) {
      // A peer that sends a wrong piece is dropped; its pieces go to the others.
      this.sockets.get(wire)?.destroy();
      return;
    }
    this.finishing.add(index);
    this.store.write(index, blocks).then(
      () => {
        this.finishing.delete(index);
        if (this.closed) return;
        this.have.set(index);
        this.remaining -= 1;
        this.lastProgress = Date.now();
        for (const other of this.wires) other.have(index);
        if (this.complete) {
          clearInterval(this.stallTimer);
          for (const other of this.wires) if (other.amInterested) other.uninterested();
          this.settle.resolve();
          void this.announce("completed");
          return;
        }
        for (const other of this.wires) this.fill(other);
      },
      (error: unknown) => {
        this.finishing.delete(index);
        this.fail(error as Error);
      },
    );
    this.fill(wire);
  }
}
