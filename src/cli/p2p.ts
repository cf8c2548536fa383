// The peer-to-peer commands of `berth` (docs/p2p.md): `agent` (a per-host pull endpoint over the
// CAS driver), `tracker` (a BitTorrent HTTP tracker alone) and `origin` (a registry that also
// seeds its blobs and tracks peers). The peer-to-peer modules load only when one of these runs:
// `berth serve` does not carry them.

import { createServer } from "node:http";
import type { Command } from "commander";
import { loadConfig } from "../config/index.js";
import { startRegistry } from "../server/index.js";

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  tib: 1024 ** 4,
};

/** "10GiB", "500MB", "1048576": bytes. Throws naming the value. */
export function parseSize(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (match === null || unit === undefined) {
    throw new Error(`not a size: ${JSON.stringify(value)} (such as 10GiB, 500MB or 1048576)`);
  }
  return Math.floor(Number(match[1]) * unit);
}

/** "host:port" (or ":port", meaning all addresses) into its parts. Throws naming the value. */
export function parseAddress(value: string, option: string): { host: string; port: number } {
  const at = value.lastIndexOf(":");
  const port = Number(value.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${option}: not host:port: ${JSON.stringify(value)}`);
  }
  const host = value.slice(0, at).replace(/^\[|\]$/g, "");
  return { host: host === "" ? "0.0.0.0" : host, port };
}

function stopOn(close: () => Promise<void>): void {
  const stop = (): void => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

interface AgentFlags {
  origin: string;
  originP2p?: string;
  tracker?: string;
  root: string;
  addr: string;
  peerAddr: string;
  cacheSize: string;
  readWrite?: boolean;
  uploadSlots: string;
}

export function addP2PCommands(program: Command): void {
  program
    .command("agent")
    .description(
      "serve pulls on this host from the fleet's peers (a CAS of blobs, BitTorrent between hosts; docs/p2p.md)",
    )
    .requiredOption("--origin <url>", "the origin registry, such as http://origin:5000")
    .option(
      "--origin-p2p <url>",
      "the origin's P2P side (berth origin --p2p-addr), such as http://origin:5001; without it, blobs come from the origin alone",
    )
    .option("--tracker <url>", "the tracker's announce URL (default: <origin-p2p>/announce)")
    .option("--root <dir>", "where the CAS lives", "./agent-data")
    .option("--addr <host:port>", "where the registry API listens", "127.0.0.1:5050")
    .option("--peer-addr <host:port>", "where peers connect", "0.0.0.0:6881")
    .option("--cache-size <size>", "bytes the CAS may hold, least recently used out first", "10GiB")
    .option("--read-write", "accept pushes, sent on to the origin (read-only by default)")
    .option("--upload-slots <n>", "peers served at once per blob", "8")
    .action(async (flags: AgentFlags) => {
      const api = parseAddress(flags.addr, "--addr");
      const peer = parseAddress(flags.peerAddr, "--peer-addr");
      const { startAgent } = await import("../p2p/index.js");
      const agent = await startAgent({
        root: flags.root,
        origin: flags.origin,
        originP2P: flags.originP2p,
        tracker: flags.tracker,
        host: api.host,
        port: api.port,
        peerHost: peer.host,
        peerPort: peer.port,
        capacity: parseSize(flags.cacheSize),
        readWrite: flags.readWrite ?? false,
        uploadSlots: Number(flags.uploadSlots),
        logLevel: "warn",
      });
      stopOn(() => agent.close());
      const mode = flags.originP2p ? `P2P, peers on port ${agent.node?.port}` : "origin only";
      process.stdout.write(`Berth agent serving ${agent.url} (${mode})\n`);
    });

  program
    .command("tracker")
    .description("a BitTorrent HTTP tracker (BEP 3/23) for agents and origins: GET /announce")
    .option("--addr <host:port>", "where it listens", "0.0.0.0:6969")
    .option("--interval <seconds>", "seconds between announces asked of peers", "10")
    .action(async (flags: { addr: string; interval: string }) => {
      const { host, port } = parseAddress(flags.addr, "--addr");
      const { Tracker } = await import("../p2p/index.js");
      const tracker = new Tracker({ interval: Number(flags.interval) });
      const server = createServer((request, response) => {
        if ((request.url ?? "").split("?")[0] === "/announce") tracker.handle(request, response);
        else response.writeHead(404).end();
      });
      await new Promise<void>((resolve) => server.listen(port, host, resolve));
      stopOn(() => new Promise((resolve) => server.close(() => resolve())));
      const address = server.address();
      const bound = typeof address === "object" && address !== null ? address.port : port;
      process.stdout.write(`Berth tracker on http://${host}:${bound}/announce\n`);
    });

  program
    .command("origin")
    .description(
      "serve the registry (as berth serve) and seed its blobs to agents: metainfo, tracker, peer",
    )
    .argument("[config]", "config.yml in distribution's format")
    .option("--p2p-addr <host:port>", "the P2P side's HTTP (tracker, metainfo)", "0.0.0.0:5001")
    .option("--peer-addr <host:port>", "where peers connect", "0.0.0.0:6881")
    .option("--upload-slots <n>", "peers served at once per blob (few: peers share)", "2")
    .option("--tracker <url>", "another tracker's announce URL (default: this origin's)")
    .action(
      async (
        file: string | undefined,
        flags: { p2pAddr: string; peerAddr: string; uploadSlots: string; tracker?: string },
      ) => {
        const config = await loadConfig(file);
        const http = parseAddress(flags.p2pAddr, "--p2p-addr");
        const peer = parseAddress(flags.peerAddr, "--peer-addr");
        const registry = await startRegistry({ config });
        const { startOriginP2P } = await import("../p2p/index.js");
        const p2p = await startOriginP2P({
          driver: registry.driver,
          registryServer: registry.server,
          host: http.host,
          port: http.port,
          peerPort: peer.port,
          uploadSlots: Number(flags.uploadSlots),
          tracker: flags.tracker,
        });
        stopOn(async () => {
          await p2p.close();
          await registry.close();
        });
        process.stdout.write(
          `Berth origin serving ${registry.url}; P2P ${p2p.url} (tracker ${p2p.announceUrl}, peers on port ${p2p.node.port})\n`,
        );
      },
    );
}
