// `berth agent`: a per-host pull endpoint (seed 002's agent). The registry API on a local port,
// read-only by default, whose storage is the CAS driver with the peer-to-peer transferer (or the
// origin transferer alone, without P2P): skopeo, podman or containerd on the host pull from
// 127.0.0.1, and the hosts share the bytes. The CAS is bounded by bytes (LRU) and survives restarts.

import { join } from "node:path";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { randomUUID } from "node:crypto";
import { registerTransferer, type Transferer } from "../driver/index.js";
import { PeerNode } from "./swarm.js";
import { OriginTransferer, P2PTransferer } from "./transferers.js";

export interface AgentOptions {
  /** Where the CAS and the scratch area live. */
  root: string;
  /** The origin registry's URL. */
  origin: string;
  /** The origin's peer-to-peer side (metainfo); without it, blobs come from the origin alone. */
  originP2P?: string;
  /** The tracker's announce URL. Default `<originP2P>/announce`. */
  tracker?: string;
  /** Address and port of the registry API. Default 127.0.0.1 and 0 (a free port). */
  host?: string;
  port?: number;
  /** Address and port peers connect to. Default 127.0.0.1 and 0. */
  peerHost?: string;
  peerPort?: number;
  /** Bytes the CAS may hold; 0 is unbounded. */
  capacity?: number;
  /** Accept pushes (sent on to the origin). Default false. */
  readWrite?: boolean;
  /** Peers served at once per blob. Default 8. */
  uploadSlots?: number;
  logLevel?: "error" | "warn" | "info" | "debug" | "silent";
}

export interface RunningAgent {
  readonly url: string;
  readonly registry: RunningRegistry;
  /** This host's peer, when P2P is on. */
  readonly node: PeerNode | undefined;
  close(): Promise<void>;
}

/** Starts an agent. */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  let node: PeerNode | undefined;
  let transferer: Transferer;
  if (options.originP2P !== undefined) {
    node = await PeerNode.start({
      tracker: options.tracker ?? `${options.originP2P.replace(/\/+$/, "")}/announce`,
      host: options.peerHost ?? "127.0.0.1",
      port: options.peerPort ?? 0,
      uploadSlots: options.uploadSlots ?? 8,
    });
    transferer = new P2PTransferer({ origin: options.origin, originP2P: options.originP2P, node });
  } else {
    transferer = new OriginTransferer(options.origin);
  }
  const name = `agent-${randomUUID()}`;
  const unregister = registerTransferer(name, transferer);
  let registry: RunningRegistry;
  try {
    registry = await startRegistry({
      driver: "cas",
      parameters: {
        rootdirectory: join(options.root),
        constructor: options.readWrite ? "rw" : "ro",
        capacity: options.capacity ?? 0,
        transferer: name,
      },
      readOnly: !options.readWrite,
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0,
      logLevel: options.logLevel ?? "warn",
    });
  } catch (error) {
    unregister();
    await transferer.close?.();
    throw error;
  }
  return {
    url: registry.url,
    registry,
    node,
    async close() {
      await registry.close();
      unregister();
      await transferer.close?.();
    },
  };
}
