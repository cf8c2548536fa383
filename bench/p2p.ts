// `npm run bench:p2p`: peer-to-peer distribution measured (issue 18). An origin (`berth origin`,
// filesystem storage, tracker and seeder in its process) and N agents (`berth agent`), each a
// separate process, each in its own network namespace with its upload limited by tc when run as
// root with `ip netns` working (on loopback otherwise). A fresh image of random layers is pushed
// to the origin, every agent pulls it at once with skopeo, every pulled blob's digest is checked,
// and the origin's egress (registry HTTP, P2P HTTP and peer bytes, counted by the origin) is read.
// The same is then done with agents that take blobs from the origin alone. Output (stdout):
//
//   p2p: agents=8 image_mib=256 origin_egress_mib=E ratio=E/X p50_s=… p99_s=… digests=ok
//   no-p2p: agents=8 image_mib=256 origin_egress_mib=E ratio=E/X p50_s=… p99_s=… digests=ok
//
// With --kill, a third run kills one agent (SIGKILL) mid-transfer and checks the others finish.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { Command } from "commander";

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const CLI = join(import.meta.dirname, "..", "src", "cli", "main.js");

const program = new Command()
  .name("npm run bench:p2p --")
  .option("--agents <n>", "agents pulling at once", Number, 8)
  .option("--image-mib <n>", "image size in MiB (random layers)", Number, 256)
  .option("--layers <n>", "layers of the image", Number, 4)
  // 100 Mbit/s by default: the hosts of a simulation share this machine's cores, and with faster
  // links those cores, not the links, bound both runs (at 400 Mbit/s on 2 cores, 8 agents: P2P
  // p99 35.2 s, origin-only 52.6 s), which says nothing about a fleet whose hosts each have a CPU.
  .option(
    "--rate <mbit>",
    "upload limit of every host in Mbit/s (network namespaces only)",
    Number,
    100,
  )
  .option("--loopback", "do not use network namespaces even when possible")
  .option("--kill", "also run once more, killing one agent mid-transfer")
  .option("--cpu-prof <dir>", "write a CPU profile of the origin and every agent into <dir>")
  .parse();
const options = program.opts<{
  agents: number;
  imageMib: number;
  layers: number;
  rate: number;
  loopback?: boolean;
  kill?: boolean;
  cpuProf?: string;
}>();

function log(message: string): void {
  process.stderr.write(`bench:p2p: ${message}\n`);
}

async function run(command: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(command, args, { maxBuffer: 16 * MiB });
  return stdout;
}

/** Network namespaces: one per host, on a bridge, each host's upload limited by tc. */
class Network {
  private readonly names: string[] = [];
  private readonly bridge = "bbr0";

  constructor(readonly rateMbit: number) {}

  static async available(): Promise<boolean> {
    if (process.getuid?.() !== 0) return false;
    try {
      await run("ip", ["netns", "add", "berth-probe"]);
      await run("ip", ["netns", "del", "berth-probe"]);
      await run("tc", ["-V"]);
      return true;
    } catch {
      return false;
    }
  }

  async setUp(): Promise<void> {
    await this.tearDown();
    await run("ip", ["link", "add", this.bridge, "type", "bridge"]);
    await run("ip", ["addr", "add", "10.77.0.1/16", "dev", this.bridge]);
    await run("ip", ["link", "set", this.bridge, "up"]);
  }

  /** Adds host `index` (0: the origin) in namespace berth-h<index> at 10.77.1.<index+1>. */
  async addHost(index: number): Promise<{ namespace: string; ip: string }> {
    const namespace = `berth-h${index}`;
    const outside = `bvo${index}`;
    const inside = `bvi${index}`;
    const ip = `10.77.1.${index + 1}`;
    await run("ip", ["netns", "add", namespace]);
    this.names.push(namespace);
    await run("ip", ["link", "add", outside, "type", "veth", "peer", "name", inside]);
    await run("ip", ["link", "set", inside, "netns", namespace]);
    await run("ip", ["link", "set", outside, "master", this.bridge]);
    await run("ip", ["link", "set", outside, "up"]);
    const inNs = (args: string[]) => run("ip", ["netns", "exec", namespace, ...args]);
    await inNs(["ip", "addr", "add", `${ip}/16`, "dev", inside]);
    await inNs(["ip", "link", "set", inside, "up"]);
    await inNs(["ip", "link", "set", "lo", "up"]);
    // The host's upload: what it sends onto the bridge.
    await inNs([
      "tc",
      "qdisc",
      "add",
      "dev",
      inside,
      "root",
      "tbf",
      "rate",
      `${this.rateMbit}mbit`,
      "burst",
      "256kb",
      "latency",
      "100ms",
    ]);
    return { namespace, ip };
  }

  async tearDown(): Promise<void> {
    const existing = (await run("ip", ["netns", "list"]).catch(() => ""))
      .split("\n")
      .map((line) => line.split(" ")[0]!)
      .filter((name) => name.startsWith("berth-h"));
    for (const name of existing) await run("ip", ["netns", "del", name]).catch(() => {});
    await run("ip", ["link", "del", this.bridge]).catch(() => {});
    this.names.length = 0;
  }
}

interface Host {
  namespace?: string;
  /** Address other hosts reach it at. */
  ip: string;
}

/** Starts `berth <args>` (in the host's namespace) and waits for its first stdout line. */
async function startBerth(host: Host, args: string[], name: string): Promise<ChildProcess> {
  const node = [
    ...(options.cpuProf === undefined
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${join(options.cpuProf, name.replace(" ", ""))}`]),
    CLI,
    ...args,
  ];
  const command = host.namespace
    ? { file: "ip", args: ["netns", "exec", host.namespace, process.execPath, ...node] }
    : { file: process.execPath, args: node };
  const child = spawn(command.file, command.args, { stdio: ["ignore", "pipe", "pipe"] });
  let errors = "";
  child.stderr.on("data", (chunk: Buffer) => {
    errors = (errors + chunk.toString()).slice(-4000);
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`${name} exited ${code}: ${errors}`)));
  });
  child.stdout.resume();
  return child;
}

/** CPU seconds (user + system) a process used so far; 0 when it is gone. */
async function cpuSeconds(child: ChildProcess | undefined): Promise<number> {
  if (child?.pid === undefined) return 0;
  try {
    const stat = await readFile(`/proc/${child.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime, fields 14 and 15 of proc(5), in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

interface Layer {
  digest: string;
  size: number;
  file: string;
}

/** Writes a layer of random bytes to a file, hashing it on the way. */
async function randomLayer(dir: string, index: number, size: number): Promise<Layer> {
  const file = join(dir, `layer${index}`);
  const hash = createHash("sha256");
  const out = createWriteStream(file);
  for (let written = 0; written < size;) {
    const chunk = randomBytes(Math.min(4 * MiB, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    written += chunk.length;
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  return { digest: `sha256:${hash.digest("hex")}`, size, file };
}

async function pushBlob(
  registry: string,
  repository: string,
  body: Readable | Buffer,
  digest: string,
): Promise<void> {
  const start = await fetch(`${registry}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
  const target = new URL(start.headers.get("location")!, registry);
  target.searchParams.set("digest", digest);
  const finish = await fetch(target, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: Buffer.isBuffer(body) ? body : Readable.toWeb(body),
    duplex: "half",
  });
  if (finish.status !== 201)
    throw new Error(`upload of ${digest}: ${finish.status} ${await finish.text()}`);
}

/** Pushes a fresh image of random layers; returns the digests a pull must give. */
async function pushImage(
  registry: string,
  dir: string,
  repository: string,
  tag: string,
): Promise<string[]> {
  const layerSize = Math.floor((options.imageMib * MiB) / options.layers);
  const layers: Layer[] = [];
  for (let index = 0; index < options.layers; index++)
    layers.push(await randomLayer(dir, index, layerSize));
  for (const layer of layers)
    await pushBlob(registry, repository, createReadStream(layer.file), layer.digest);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) },
      created: new Date().toISOString(),
    }),
  );
  const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  await pushBlob(registry, repository, config, configDigest);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: configDigest,
        size: config.length,
      },
      layers: layers.map((layer) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: layer.digest,
        size: layer.size,
      })),
    }),
  );
  const put = await fetch(`${registry}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  if (put.status !== 201) throw new Error(`manifest: ${put.status} ${await put.text()}`);
  for (const layer of layers) await rm(layer.file);
  return [...layers.map((layer) => layer.digest), configDigest];
}

/**
 * True when every expected blob is in `dir` (skopeo's oci: layout, layers kept uncompressed) and
 * every blob there hashes to its name.
 */
async function verifyPull(dir: string, digests: string[]): Promise<boolean> {
  const blobs = join(dir, "blobs", "sha256");
  const files = await readdir(blobs);
  for (const digest of digests) {
    if (!files.includes(digest.slice("sha256:".length))) {
      log(`${dir}: blob ${digest} missing`);
      return false;
    }
  }
  for (const hex of files) {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(join(blobs, hex))) hash.update(chunk as Buffer);
    if (hash.digest("hex") !== hex) {
      log(`${dir}: blob ${hex} hashes to another digest`);
      return false;
    }
  }
  return true;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? NaN;
}

async function egress(originP2P: string): Promise<number> {
  const response = await fetch(`${originP2P}/stats`);
  return ((await response.json()) as { egressBytes: number }).egressBytes;
}

interface RunResult {
  seconds: number[];
  egressBytes: number;
  digestsOk: boolean;
  failed: number;
}

/** Starts the agents, has them all pull at once, and stops them. */
async function pullRound(
  work: string,
  hosts: Host[],
  origin: { registry: string; p2p: string; process: ChildProcess },
  reference: string,
  digests: string[],
  round: string,
  p2p: boolean,
  killOne: boolean,
): Promise<RunResult> {
  const agents: ChildProcess[] = [];
  try {
    for (let index = 0; index < options.agents; index++) {
      const host = hosts[index + 1]!;
      const port = host.namespace ? 5050 : 5100 + index;
      const peerPort = host.namespace ? 6881 : 6900 + index;
      const args = [
        "agent",
        "--origin",
        origin.registry,
        "--root",
        join(work, `${round}-agent${index}`),
        "--addr",
        `127.0.0.1:${port}`,
        "--peer-addr",
        `${host.namespace ? "0.0.0.0" : "127.0.0.1"}:${peerPort}`,
        ...(p2p ? ["--origin-p2p", origin.p2p] : []),
      ];
      agents.push(await startBerth(host, args, `agent ${index}`));
    }
    const before = await egress(origin.p2p);
    log(
      `${round}: load average ${loadavg()
        .map((load) => load.toFixed(1))
        .join(" ")}`,
    );
    const originCpuBefore = await cpuSeconds(origin.process);
    let skopeoCpu = 0;
    const started = Date.now();
    const pulls = agents.map(async (_, index) => {
      const host = hosts[index + 1]!;
      const port = host.namespace ? 5050 : 5100 + index;
      const out = join(work, `${round}-pull${index}`);
      const skopeo = [
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        `docker://127.0.0.1:${port}/${reference}`,
        // An OCI layout, as podman or containerd would, takes the layers at once (a `dir:`
        // destination takes one layer after the other); layers are kept as they are.
        "--dest-oci-accept-uncompressed-layers",
        `oci:${out}:pulled`,
      ];
      // sh's `times` reports the CPU time skopeo used (its children's line).
      const timed = [
        "sh",
        "-c",
        'skopeo "$@"; status=$?; times >&2; exit $status',
        "sh",
        ...skopeo,
      ];
      const [file, args] = host.namespace
        ? ["ip", ["netns", "exec", host.namespace, ...timed]]
        : [timed[0]!, timed.slice(1)];
      const { stderr } = await execFileAsync(file, args, {
        maxBuffer: 16 * MiB,
        timeout: 900_000,
      });
      const seconds = (Date.now() - started) / 1000;
      const times = [
        ...stderr
          .trim()
          .split("\n")
          .at(-1)!
          .matchAll(/(\d+)m([\d.]+)s/g),
      ];
      skopeoCpu += times.reduce(
        (total, [, minutes, secs]) => total + Number(minutes) * 60 + Number(secs),
        0,
      );
      return { seconds, out };
    });
    let killer: NodeJS.Timeout | undefined;
    if (killOne) {
      // Once a quarter of the image has left the origin, one agent dies without a word.
      killer = setInterval(() => {
        void egress(origin.p2p).then((bytes) => {
          if (killer === undefined || bytes - before < (options.imageMib * MiB) / 4) return;
          clearInterval(killer);
          killer = undefined;
          log(`${round}: killing agent 0 (SIGKILL) mid-transfer`);
          agents[0]!.kill("SIGKILL");
        });
      }, 250);
    }
    const settled = await Promise.allSettled(pulls);
    clearInterval(killer);
    const after = await egress(origin.p2p);
    log(
      `${round}: load average ${loadavg()
        .map((load) => load.toFixed(1))
        .join(" ")}`,
    );
    const agentsCpu = (await Promise.all(agents.map((agent) => cpuSeconds(agent)))).reduce(
      (total, seconds) => total + seconds,
      0,
    );
    log(
      `${round}: CPU seconds: agents ${agentsCpu.toFixed(1)} (from their start), origin ${((await cpuSeconds(origin.process)) - originCpuBefore).toFixed(1)}, skopeo ${skopeoCpu.toFixed(1)}`,
    );
    // Checked once every pull is over, so that no pull's time includes another's check.
    const done: { seconds: number; ok: boolean }[] = [];
    for (const [index, result] of settled.entries()) {
      if (result.status !== "fulfilled") continue;
      const ok = await verifyPull(result.value.out, digests);
      await rm(result.value.out, { recursive: true, force: true });
      if (!(killOne && index === 0)) done.push({ seconds: result.value.seconds, ok });
    }
    const failed = settled.filter(
      (result, index) => result.status === "rejected" && !(killOne && index === 0),
    ).length;
    for (const [index, result] of settled.entries()) {
      if (result.status === "rejected" && !(killOne && index === 0))
        log(`${round}: agent ${index} failed: ${(result.reason as Error).message}`);
    }
    return {
      seconds: done.map((pull) => pull.seconds),
      egressBytes: after - before,
      digestsOk: failed === 0 && done.every((pull) => pull.ok),
      failed,
    };
  } finally {
    await Promise.all(agents.map((agent) => stop(agent)));
  }
}

function line(prefix: string, result: RunResult): string {
  const egressMib = result.egressBytes / MiB;
  return [
    `${prefix}: agents=${options.agents}`,
    `image_mib=${options.imageMib}`,
    `origin_egress_mib=${egressMib.toFixed(1)}`,
    `ratio=${(egressMib / options.imageMib).toFixed(2)}`,
    `p50_s=${percentile(result.seconds, 0.5).toFixed(1)}`,
    `p99_s=${percentile(result.seconds, 0.99).toFixed(1)}`,
    `digests=${result.digestsOk ? "ok" : "FAIL"}`,
  ].join(" ");
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "berth-bench-p2p-"));
  const network =
    !options.loopback && (await Network.available()) ? new Network(options.rate) : undefined;
  const hosts: Host[] = [];
  let origin: ChildProcess | undefined;
  try {
    if (network) {
      await network.setUp();
      for (let index = 0; index <= options.agents; index++) {
        const { namespace, ip } = await network.addHost(index);
        hosts.push({ namespace, ip });
      }
      log(
        `network namespaces: ${options.agents + 1} hosts on a bridge, upload ${options.rate} Mbit/s each`,
      );
    } else {
      for (let index = 0; index <= options.agents; index++) hosts.push({ ip: "127.0.0.1" });
      log("loopback (no network namespaces: not root, ip netns unavailable, or --loopback)");
    }
    const originHost = hosts[0]!;
    const config = join(work, "origin.yml");
    await writeFile(
      config,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, "origin")}\nhttp:\n  addr: ${network ? "0.0.0.0" : "127.0.0.1"}:5000\n`,
    );
    origin = await startBerth(
      originHost,
      [
        "origin",
        config,
        "--p2p-addr",
        `${network ? "0.0.0.0" : "127.0.0.1"}:5001`,
        "--peer-addr",
        `${network ? "0.0.0.0" : "127.0.0.1"}:6881`,
      ],
      "origin",
    );
    const registry = `http://${originHost.ip}:5000`;
    const p2pUrl = `http://${originHost.ip}:5001`;
    const tag = `t${Date.now()}`;
    log(`pushing a fresh ${options.imageMib} MiB image (${options.layers} random layers)`);
    const digests = await pushImage(registry, work, "bench/image", tag);
    const originUrls = { registry, p2p: p2pUrl, process: origin };
    const reference = `bench/image:${tag}`;

    log(`P2P: ${options.agents} agents pull at once`);
    const p2p = await pullRound(work, hosts, originUrls, reference, digests, "p2p", true, false);
    log(`origin only: ${options.agents} agents pull at once`);
    const direct = await pullRound(
      work,
      hosts,
      originUrls,
      reference,
      digests,
      "direct",
      false,
      false,
    );
    process.stdout.write(`${line("p2p", p2p)}\n${line("no-p2p", direct)}\n`);
    if (options.kill) {
      log("P2P with one agent killed mid-transfer");
      const killed = await pullRound(
        work,
        hosts,
        originUrls,
        reference,
        digests,
        "kill",
        true,
        true,
      );
      log(
        `kill: ${killed.seconds.length} of ${options.agents - 1} surviving agents finished, digests ${killed.digestsOk ? "ok" : "FAIL"}, p99 ${percentile(killed.seconds, 0.99).toFixed(1)} s`,
      );
      if (!killed.digestsOk) process.exitCode = 1;
    }
    if (!p2p.digestsOk || !direct.digestsOk) process.exitCode = 1;
  } finally {
    if (origin) await stop(origin);
    await network?.tearDown();
    await rm(work, { recursive: true, force: true });
  }
}

process.once("SIGINT", () => {
  void new Network(0).tearDown().finally(() => process.exit(130));
});

await main();
