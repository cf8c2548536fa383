// The origin's peer-to-peer side (Kraken's origin and tracker in one process): beside an ordinary
// Berth registry, it serves each blob's BitTorrent metainfo (computed once, kept beside the blob in
// storage), seeds every blob it was asked about to the swarm with few upload slots (peers get most
// pieces from each other), small blobs over plain HTTP, and a tracker (./tracker.ts).
//
//   GET /announce             the tracker (BEP 3, compact peer lists)
//   GET /metainfo/<digest>    the blob's .torrent (404 when the registry has no such blob)
//   GET /blobs/<digest>       the blob's bytes (for blobs smaller than a piece)
//   GET /stats                {"egressBytes": ...}: bytes this origin sent (registry, HTTP, peers)

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { pipeline } from "node:stream/promises";
import { type StorageDriver } from "../driver/index.js";
import { p2pBlobPaths } from "../storage/index.js";
import {
  computeMetainfo,
  decodeMetainfo,
  encodeMetainfo,
  pieceLengthFor,
  pieceSize,
  type Metainfo,
} from "./metainfo.js";
import { PeerNode, type PieceStore } from "./swarm.js";
import { Tracker } from "./tracker.js";

const MiB = 1024 * 1024;
/** Piece bytes an origin keeps in memory per blob while peers fetch them. */
const PIECE_CACHE_BYTES = 32 * MiB;
/** Metainfo kept in memory (each is about 20 bytes per piece). */
const METAINFO_CACHE = 4096;

/** Counts the bytes a server's connections wrote, open and closed. */
export function countWrittenBytes(server: Server): () => number {
  const open = new Set<Socket>();
  let closed = 0;
  server.on("connection", (socket: Socket) => {
    open.add(socket);
    socket.once("close", () => {
      open.delete(socket);
      closed += socket.bytesWritten;
    });
  });
  return () => [...open].reduce((total, socket) => total + socket.bytesWritten, closed);
}

/** Pieces read from the registry's storage, a few kept in memory while peers ask for their blocks. */
class StoragePieceStore implements PieceStore {
  private readonly cache = new Map<number, Promise<Buffer>>();
  private readonly capacity: number;

  constructor(
    private readonly driver: StorageDriver,
    private readonly path: string,
    private readonly meta: Metainfo,
  ) {
    this.capacity = Math.max(4, Math.floor(PIECE_CACHE_BYTES / meta.pieceLength));
  }

  async read(index: number, offset: number, length: number): Promise<Buffer> {
    let piece = this.cache.get(index);
    if (piece === undefined) {
      piece = this.load(index);
      this.cache.set(index, piece);
      piece.catch(() => this.cache.delete(index));
      if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value!);
    }
    return (await piece).subarray(offset, offset + length);
  }

  async write(): Promise<void> {
    throw new Error("the origin's pieces are read-only");
  }

  private async load(index: number): Promise<Buffer> {
    const size = pieceSize(this.meta, index);
    const stream = await this.driver.reader(this.path, index * this.meta.pieceLength);
    const piece = Buffer.allocUnsafe(size);
    let filled = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const take = Math.min(chunk.length, size - filled);
        chunk.copy(piece, filled, 0, take);
        filled += take;
        if (filled === size) break;
      }
    } finally {
      stream.destroy();
    }
    if (filled !== size) throw new Error(`piece ${index} of ${this.meta.digest} is short`);
    return piece;
  }
}

export interface OriginP2POptions {
  /** The origin registry's storage driver (its blobs are seeded from it). */
  driver: StorageDriver;
  /** Address of the HTTP side (tracker, metainfo). Default 127.0.0.1. */
  host?: string;
  /** Port of the HTTP side; 0 (default) picks one. */
  port?: number;
  /** Port peers connect to; 0 (default) picks one. */
  peerPort?: number;
  /** Peers served at once per blob. Default 2. */
  uploadSlots?: number;
  /** Another tracker's announce URL; default this origin's own /announce. */
  tracker?: string;
  /** The registry's HTTP server, counted in /stats. */
  registryServer?: Server;
  /** The tracker's announce interval in seconds. Default 10. */
  interval?: number;
}

export interface OriginP2P {
  /** `http://host:port` of the HTTP side. */
  readonly url: string;
  /** The tracker's announce URL peers use. */
  readonly announceUrl: string;
  readonly node: PeerNode;
  /** Bytes sent so far by the registry (when given), the HTTP side and the peer. */
  egressBytes(): number;
  close(): Promise<void>;
}

/** Starts the origin's peer-to-peer side next to a registry. */
export async function startOriginP2P(options: OriginP2POptions): Promise<OriginP2P> {
  const host = options.host ?? "127.0.0.1";
  const tracker = new Tracker({ interval: options.interval ?? 10 });
  const server = createServer();
  const httpBytes = countWrittenBytes(server);
  const registryBytes = options.registryServer
    ? countWrittenBytes(options.registryServer)
    : () => 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  const announceUrl = options.tracker ?? `${url}/announce`;
  const node = await PeerNode.start({
    tracker: announceUrl,
    host,
    port: options.peerPort ?? 0,
    uploadSlots: options.uploadSlots ?? 2,
    peerIdPrefix: "-BO0001-",
  });
  const metainfo = new MetainfoSource(options.driver, node);
  const egressBytes = (): number => registryBytes() + httpBytes() + node.uploaded;

  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(500, { "content-type": "text/plain" });
        response.end(`${(error as Error).message}\n`);
      } else {
        response.destroy();
      }
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? "/").split("?")[0]!;
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/announce") return tracker.handle(request, response);
    if (path === "/stats") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ egressBytes: egressBytes(), peerBytes: node.uploaded }));
      return;
    }
    const match = /^\/(metainfo|blobs)\/([^/]+)$/.exec(path);
    const paths = match ? p2pBlobPaths(decodeURIComponent(match[2]!)) : undefined;
    if (match === null || paths === undefined) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    const digest = decodeURIComponent(match[2]!);
    const meta = await metainfo.get(digest);
    if (meta === undefined) {
      response.writeHead(404, { "content-type": "text/plain" }).end(`blob unknown: ${digest}\n`);
      return;
    }
    if (match[1] === "metainfo") {
      const body = encodeMetainfo(meta);
      response.writeHead(200, {
        "content-type": "application/x-bittorrent",
        "content-length": body.length,
      });
      response.end(request.method === "HEAD" ? undefined : body);
      return;
    }
    response.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": meta.length,
    });
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    await pipeline(await options.driver.reader(paths.data, 0), response);
  }

  return {
    url,
    announceUrl,
    node,
    egressBytes,
    async close() {
      await node.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Each blob's metainfo: from memory, from storage, or computed once from the blob and kept. */
class MetainfoSource {
  private readonly known = new Map<string, Promise<Metainfo | undefined>>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly node: PeerNode,
  ) {}

  get(digest: string): Promise<Metainfo | undefined> {
    let meta = this.known.get(digest);
    if (meta === undefined) {
      meta = this.load(digest);
      this.known.set(digest, meta);
      meta.then(
        (found) => {
          if (found === undefined) this.known.delete(digest);
        },
        () => this.known.delete(digest),
      );
      if (this.known.size > METAINFO_CACHE) this.known.delete(this.known.keys().next().value!);
    }
    return meta;
  }

  private async load(digest: string): Promise<Metainfo | undefined> {
    const paths = p2pBlobPaths(digest)!;
    const info = await this.driver.stat(paths.data).catch(notFound);
    if (info === undefined) return undefined;
    let meta: Metainfo | undefined;
    const stored = await this.driver.getContent(paths.metainfo).catch(notFound);
    if (stored !== undefined) {
      try {
        meta = decodeMetainfo(stored, digest);
      } catch {
        meta = undefined; // unreadable: computed again below
      }
    }
    if (meta === undefined) {
      const stream = await this.driver.reader(paths.data, 0);
      meta = await computeMetainfo(digest, stream, pieceLengthFor(info.size));
      await this.driver.putContent(paths.metainfo, encodeMetainfo(meta));
    }
    this.node.join(meta, new StoragePieceStore(this.driver, paths.data, meta), true);
    return meta;
  }
}

function notFound(error: unknown): undefined {
  if ((error as { code?: string }).code === "ERR_DRIVER_PATH_NOT_FOUND") return undefined;
  throw error;
}
