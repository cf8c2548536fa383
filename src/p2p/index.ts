// Peer-to-peer blob distribution (seed 002, Kraken's design) on BitTorrent: the tracker, the
// origin's seeding side, the CAS driver's transferers and the per-host agent.

export { startAgent, type AgentOptions, type RunningAgent } from "./agent.js";
export {
  startOriginP2P,
  countWrittenBytes,
  type OriginP2P,
  type OriginP2POptions,
} from "./origin.js";
export { Tracker, type TrackerOptions } from "./tracker.js";
export { PeerNode, Swarm, type PeerNodeOptions, type PieceStore } from "./swarm.js";
export { OriginTransferer, P2PTransferer, type P2PTransfererOptions } from "./transferers.js";
export {
  computeMetainfo,
  decodeMetainfo,
  encodeMetainfo,
  pieceLengthFor,
  type Metainfo,
} from "./metainfo.js";
