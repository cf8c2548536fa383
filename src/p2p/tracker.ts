// A BitTorrent HTTP tracker (BEP 3 announce, BEP 23 compact peer lists): peers announce the info
// hash they want or have, with the port they accept connections on, and get the others back.
// Swarms live in memory; a peer that stops announcing is forgotten after twice the interval.
// `berth tracker` serves it alone; the origin serves it beside its metainfo (src/p2p/origin.ts).

import type { IncomingMessage, ServerResponse } from "node:http";
import bencode from "bencode";

/** Peers returned per announce at most (BEP 3's customary default). */
const NUMWANT = 50;

interface Peer {
  ip: string;
  port: number;
  seeding: boolean;
  seen: number;
}

export interface TrackerOptions {
  /** Seconds between announces asked of peers. Default 10. */
  interval?: number;
}

/** Decodes a query parameter holding raw bytes (info_hash, peer_id): percent escapes are bytes. */
function rawParameter(query: string, name: string): Buffer | undefined {
  for (const part of query.split("&")) {
    const equals = part.indexOf("=");
    const key = equals < 0 ? part : part.slice(0, equals);
    if (key !== name) continue;
    const value = equals < 0 ? "" : part.slice(equals + 1);
    const bytes: number[] = [];
    for (let at = 0; at < value.length; at++) {
      if (value[at] === "%" && /^[0-9a-fA-F]{2}$/.test(value.slice(at + 1, at + 3))) {
        bytes.push(parseInt(value.slice(at + 1, at + 3), 16));
        at += 2;
      } else {
        bytes.push(value[at] === "+" ? 32 : value.charCodeAt(at) & 0xff);
      }
    }
    return Buffer.from(bytes);
  }
  return undefined;
}

function ipv4(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
  return /^\d+\.\d+\.\d+\.\d+$/.test(plain) ? plain : undefined;
}

/** The tracker's state and its HTTP handler for `GET /announce`. */
export class Tracker {
  private readonly swarms = new Map<string, Map<string, Peer>>();
  readonly interval: number;

  constructor(options: TrackerOptions = {}) {
    this.interval = options.interval ?? 10;
  }

  /** Handles an announce request; answers a bencoded failure reason for a bad one (BEP 3). */
  handle(request: IncomingMessage, response: ServerResponse): void {
    const url = request.url ?? "";
    const query = url.includes("?") ? url.slice(url.indexOf("?") + 1) : "";
    const answer = (body: Record<string, unknown>): void => {
      response.writeHead(200, { "content-type": "text/plain" });
      response.end(Buffer.from(bencode.encode(body)));
    };
    const infoHash = rawParameter(query, "info_hash");
    const peerId = rawParameter(query, "peer_id");
    const port = Number(new URLSearchParams(query).get("port"));
    if (infoHash?.length !== 20 || peerId?.length !== 20) {
      return answer({ "failure reason": "info_hash and peer_id must be 20 bytes each" });
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return answer({ "failure reason": "port must be 1 to 65535" });
    }
    const ip = ipv4(request.socket.remoteAddress);
    if (ip === undefined) return answer({ "failure reason": "only IPv4 peers are served" });
    const params = new URLSearchParams(query);
    const key = infoHash.toString("hex");
    const id = peerId.toString("hex");
    let swarm = this.swarms.get(key);
    if (swarm === undefined) {
      swarm = new Map();
      this.swarms.set(key, swarm);
    }
    this.expire(swarm);
    if (params.get("event") === "stopped") {
      swarm.delete(id);
    } else {
      swarm.set(id, { ip, port, seeding: params.get("left") === "0", seen: Date.now() });
    }
    // A peer on the tracker's own host (the origin's) announced from loopback: a remote peer
    // reaches it at the address it reached the tracker at.
    const here = ipv4(request.socket.localAddress);
    const reachable = (peer: Peer): Peer =>
      peer.ip.startsWith("127.") && !ip.startsWith("127.") && here !== undefined
        ? { ...peer, ip: here }
        : peer;
    const others = [...swarm.entries()]
      .filter(([other]) => other !== id)
      .map(([, peer]) => reachable(peer));
    const compact = Buffer.alloc(Math.min(others.length, NUMWANT) * 6);
    others.slice(0, NUMWANT).forEach((peer, index) => {
      peer.ip.split(".").forEach((octet, at) => compact.writeUInt8(Number(octet), index * 6 + at));
      compact.writeUInt16BE(peer.port, index * 6 + 4);
    });
    const seeders = [...swarm.values()].filter((peer) => peer.seeding).length;
    answer({
      interval: this.interval,
      complete: seeders,
      incomplete: swarm.size - seeders,
      peers: compact,
    });
  }

  private expire(swarm: Map<string, Peer>): void {
    const oldest = Date.now() - 2 * this.interval * 1000;
    for (const [id, peer] of swarm) if (peer.seen < oldest) swarm.delete(id);
  }
}
