// The CAS driver's transferers (seed 002): OriginTransferer talks to an origin registry (any
// Berth, any driver) over the OCI Distribution API; P2PTransferer takes tags and manifests from
// the origin the same way and blobs from the swarm (./swarm.ts), each piece verified, seeding what
// it has; the CAS driver verifies the blob's digest before it enters the CAS.

import { open, writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createWriteStream } from "node:fs";
import {
  TransferNotFoundError,
  type TransferHint,
  type TransferStat,
  type Transferer,
} from "../driver/index.js";
import { decodeMetainfo, pieceLengthFor, type Metainfo } from "./metainfo.js";
import { PeerNode, type PieceStore } from "./swarm.js";

/** Every manifest media type a registry may answer with. */
const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");
/** Largest manifest sent to an origin (distribution's limit is 4 MiB). */
const MANIFEST_LIMIT = 4 * 1024 * 1024;

function needRepository(digest: string, hint?: TransferHint): string {
  if (hint?.repository === undefined) {
    throw new Error(`the origin needs a repository to fetch ${digest} (none was seen)`);
  }
  return hint.repository;
}

async function failed(response: Response, what: string): Promise<Error> {
  await response.body?.cancel();
  if (response.status === 404) return new TransferNotFoundError(what);
  return new Error(`origin answered ${response.status} for ${what}`);
}

/** Tags, manifests and blobs from an origin registry over the OCI API. */
export class OriginTransferer implements Transferer {
  private readonly base: string;

  /** `origin`: the registry's URL, such as `http://origin:5000`. */
  constructor(origin: string) {
    this.base = origin.replace(/\/+$/, "");
  }

  private url(repository: string, kind: "blobs" | "manifests", reference: string): string {
    return `${this.base}/v2/${repository}/${kind}/${reference}`;
  }

  async download(digest: string, hint?: TransferHint): Promise<Readable> {
    const repository = needRepository(digest, hint);
    const kind = hint?.manifest ? "manifests" : "blobs";
    const response = await fetch(this.url(repository, kind, digest), {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!response.ok || response.body === null) throw await failed(response, digest);
    return Readable.fromWeb(response.body);
  }

  async stat(digest: string, hint?: TransferHint): Promise<TransferStat> {
    const repository = needRepository(digest, hint);
    const kind = hint?.manifest ? "manifests" : "blobs";
    const response = await fetch(this.url(repository, kind, digest), {
      method: "HEAD",
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!response.ok) throw await failed(response, digest);
    return { size: Number(response.headers.get("content-length") ?? 0) };
  }

  async getTag(repository: string, tag: string): Promise<string> {
    const response = await fetch(this.url(repository, "manifests", tag), {
      method: "HEAD",
      headers: { accept: MANIFEST_ACCEPT },
    });
    const digest = response.headers.get("docker-content-digest");
    if (!response.ok || digest === null) throw await failed(response, `${repository}:${tag}`);
    return digest;
  }

  async putTag(repository: string, tag: string, digest: string): Promise<void> {
    const response = await fetch(this.url(repository, "manifests", digest), {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!response.ok) throw await failed(response, digest);
    const body = Buffer.from(await response.arrayBuffer());
    await this.putManifest(repository, tag, body, response.headers.get("content-type"));
  }

  async upload(digest: string, stream: Readable, hint?: TransferHint): Promise<void> {
    const repository = needRepository(digest, hint);
    if (hint?.manifest) {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MANIFEST_LIMIT) throw new Error(`manifest ${digest} is over 4 MiB`);
        chunks.push(chunk);
      }
      const body = Buffer.concat(chunks);
      const mediaType = (JSON.parse(body.toString("utf8")) as { mediaType?: string }).mediaType;
      await this.putManifest(repository, digest, body, mediaType ?? null);
      return;
    }
    const start = await fetch(`${this.base}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    await start.body?.cancel();
    const location = start.headers.get("location");
    if (start.status !== 202 || location === null) throw await failed(start, `upload of ${digest}`);
    const target = new URL(location, this.base);
    target.searchParams.set("digest", digest);
    const finish = await fetch(target, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: Readable.toWeb(stream),
      duplex: "half",
    });
    if (finish.status !== 201) throw await failed(finish, `upload of ${digest}`);
    await finish.body?.cancel();
  }

  private async putManifest(
    repository: string,
    reference: string,
    body: Buffer,
    mediaType: string | null,
  ): Promise<void> {
    const response = await fetch(this.url(repository, "manifests", reference), {
      method: "PUT",
      headers: { "content-type": mediaType ?? "application/vnd.oci.image.manifest.v1+json" },
      body,
    });
    if (response.status !== 201) throw await failed(response, `manifest ${reference}`);
    await response.body?.cancel();
  }
}

/** Pieces a download keeps in memory after writing them: the ones peers ask for next. */
const RECENT_PIECES = 4;

/**
 * A blob file being written by piece, read back for the peers it is seeded to. The pieces written
 * last are served from memory: peers pick the rarest pieces, which are the ones that just arrived,
 * and each file read is a round trip through the thread pool per 128 KiB request.
 */
class FilePieceStore implements PieceStore {
  /** The blocks of the pieces written last. */
  private readonly recent = new Map<number, Uint8Array[]>();

  private constructor(
    private readonly handle: import("node:fs/promises").FileHandle,
    private readonly meta: Metainfo,
  ) {}

  static async open(file: string, meta: Metainfo): Promise<FilePieceStore> {
    return new FilePieceStore(await open(file, "w+"), meta);
  }

  async read(index: number, offset: number, length: number): Promise<Uint8Array> {
    const blocks = this.recent.get(index);
    const blockSize = blocks?.[0]?.length ?? 0;
    if (blocks !== undefined && blockSize > 0 && offset % blockSize === 0) {
      // A request for one of the blocks as they came (peers ask in the same sizes).
      const block = blocks[offset / blockSize];
      if (block !== undefined && length <= block.length) return block.subarray(0, length);
    }
    const data = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.handle.read(
      data,
      0,
      length,
      index * this.meta.pieceLength + offset,
    );
    if (bytesRead !== length) throw new Error(`short read of piece ${index}`);
    return data;
  }

  async write(index: number, blocks: Uint8Array[]): Promise<void> {
    let position = index * this.meta.pieceLength;
    let rest = blocks;
    while (rest.length > 0) {
      // One system call for the piece; a short write goes on from where it stopped.
      let { bytesWritten } = await this.handle.writev(rest, position);
      if (bytesWritten === 0) throw new Error(`piece ${index} could not be written`);
      position += bytesWritten;
      const left: Uint8Array[] = [];
      for (const block of rest) {
        if (bytesWritten >= block.length) bytesWritten -= block.length;
        else {
          left.push(block.subarray(bytesWritten));
          bytesWritten = 0;
        }
      }
      rest = left;
    }
    this.recent.set(index, blocks);
    if (this.recent.size > RECENT_PIECES) this.recent.delete(this.recent.keys().next().value!);
  }

  /** The download is over: later requests read the file. */
  forget(): void {
    this.recent.clear();
  }

  async close(): Promise<void> {
    this.recent.clear();
    await this.handle.close();
  }
}

export interface P2PTransfererOptions {
  /** The origin registry's URL (tags and manifests, pushes). */
  origin: string;
  /** The origin's peer-to-peer side (metainfo, small blobs), such as `http://origin:5001`. */
  originP2P: string;
  /** This host's peer. */
  node: PeerNode;
  /** Completed swarms kept seeding (the oldest is left past this). Default 256. */
  seeding?: number;
}

/** Blobs from the swarm; tags and manifests from the origin registry. */
export class P2PTransferer implements Transferer {
  private readonly origin: OriginTransferer;
  private readonly originP2P: string;
  private readonly node: PeerNode;
  private readonly metainfo = new Map<string, Promise<Metainfo>>();
  private readonly stores = new Map<string, FilePieceStore>();
  private readonly seeding: number;

  constructor(options: P2PTransfererOptions) {
    this.origin = new OriginTransferer(options.origin);
    this.originP2P = options.originP2P.replace(/\/+$/, "");
    this.node = options.node;
    this.seeding = options.seeding ?? 256;
  }

  private meta(digest: string): Promise<Metainfo> {
    let meta = this.metainfo.get(digest);
    if (meta === undefined) {
      meta = (async () => {
        const response = await fetch(`${this.originP2P}/metainfo/${digest}`);
        if (!response.ok) throw await failed(response, digest);
        return decodeMetainfo(new Uint8Array(await response.arrayBuffer()), digest);
      })();
      this.metainfo.set(digest, meta);
      meta.catch(() => this.metainfo.delete(digest));
      if (this.metainfo.size > 4096) this.metainfo.delete(this.metainfo.keys().next().value!);
    }
    return meta;
  }

  async stat(digest: string, hint?: TransferHint): Promise<TransferStat> {
    if (hint?.inRepository) return this.origin.stat(digest, hint);
    return { size: (await this.meta(digest)).length };
  }

  async download(digest: string): Promise<Readable> {
    const response = await fetch(`${this.originP2P}/blobs/${digest}`);
    if (!response.ok || response.body === null) throw await failed(response, digest);
    return Readable.fromWeb(response.body);
  }

  async downloadToFile(digest: string, file: string): Promise<void> {
    const meta = await this.meta(digest);
    if (meta.length < pieceLengthFor(0)) {
      // Smaller than one piece (manifests, configs): one HTTP request costs less than a swarm.
      if (meta.length === 0) return writeFile(file, "");
      await pipeline(await this.download(digest), createWriteStream(file));
      return;
    }
    const store = await FilePieceStore.open(file, meta);
    const swarm = this.node.join(meta, store, false);
    this.stores.set(meta.infoHash, store);
    try {
      await swarm.done;
    } catch (error) {
      this.node.leave(meta.infoHash);
      this.stores.delete(meta.infoHash);
      await store.close();
      throw error;
    }
    store.forget();
    // Keeps seeding from the same open file (the CAS renames it, the handle stays valid).
    if (this.stores.size > this.seeding) {
      const [oldest, old] = this.stores.entries().next().value!;
      this.node.leave(oldest);
      this.stores.delete(oldest);
      await old.close();
    }
  }

  getTag(repository: string, tag: string): Promise<string> {
    return this.origin.getTag(repository, tag);
  }

  putTag(repository: string, tag: string, digest: string): Promise<void> {
    return this.origin.putTag(repository, tag, digest);
  }

  upload(digest: string, stream: Readable, hint?: TransferHint): Promise<void> {
    return this.origin.upload(digest, stream, hint);
  }

  async close(): Promise<void> {
    await this.node.close();
    for (const store of this.stores.values()) await store.close();
    this.stores.clear();
  }
}
