// Over 400 lines: issue 7's table of workloads, a few dozen lines each, and the Meter they share.
//
// The workloads of issue 7, each a function of one registry and one repetition. A workload times
// only the traffic it is about (digests of the content it will send are computed before the clock
// starts) through a Meter, which also takes the server's CPU seconds and the client's CPU over
// exactly that window. After the clock stops it checks the result: pushed blobs answer HEAD with
// their digest and size, pulled bytes are counted and hashed at least once per registry.

import autocannon from "autocannon";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegistryClient } from "./client.js";
import type { BlobContent, ContentSource } from "./content.js";
import { onPath, type RegistryUnderTest } from "./registries.js";
import { startSink } from "./sink.js";
import { LAYOUT_TAG, readLayoutManifest, skopeoCopy, writeImageLayout } from "./skopeo.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Whether a bigger figure is better. */
export type Better = "higher" | "lower";

/** One figure a workload reports. */
export interface Metric {
  id: string;
  title: string;
  unit: string;
  better: Better;
  /** How repetitions combine: the median, or the maximum (peaks: the worst one counts). */
  aggregate: "median" | "max";
}

/** Everything a workload needs about the registry it runs against. */
export interface WorkloadContext {
  registry: RegistryUnderTest;
  client: RegistryClient;
  content: ContentSource;
  /** Seconds of each small-request load run. */
  loadSeconds: number;
  /** Facts a workload leaves for a later one (the 1 GiB blob the pull reads). */
  state: Map<string, unknown>;
}

/** Times the parts of a repetition that count, with the CPU both sides spent meanwhile. */
export class Meter {
  readonly #registry: RegistryUnderTest;
  seconds = 0;
  serverCpuSeconds = 0;
  clientCpuSeconds = 0;
  /** NaN when the registry's backend processes are not known. */
  backendCpuSeconds = 0;
  /**
   * The timed windows as [start, end] in microseconds of the monotonic clock, the clock a V8 CPU
   * profile's timestamps use, so `bench/profile.ts` can keep only the samples of one workload.
   */
  readonly windowsMicros: [number, number][] = [];

  constructor(registry: RegistryUnderTest) {
    this.#registry = registry;
  }

  async time<T>(work: () => Promise<T>): Promise<{ seconds: number; value: T }> {
    const server = this.#registry.process;
    const serverBefore = server === undefined ? 0 : await server.cpuSeconds();
    const backend = this.#registry.backendCpuSeconds;
    const backendBefore = backend === undefined ? Number.NaN : await backend();
    const clientBefore = process.cpuUsage();
    const start = process.hrtime.bigint();
    const value = await work();
    const end = process.hrtime.bigint();
    const seconds = Number(end - start) / 1e9;
    const client = process.cpuUsage(clientBefore);
    this.windowsMicros.push([Number(start / 1000n), Number(end / 1000n)]);
    const serverAfter = server === undefined ? 0 : await server.cpuSeconds();
    const backendAfter = backend === undefined ? Number.NaN : await backend();
    this.seconds += seconds;
    this.backendCpuSeconds += backendAfter - backendBefore;
    this.serverCpuSeconds += serverAfter - serverBefore;
    this.clientCpuSeconds += (client.user + client.system) / 1e6;
    return { seconds, value };
  }
}

/** A workload: metrics it reports and one repetition. */
export interface Workload {
  id: string;
  title: string;
  metrics: Metric[];
  /** The workload writes blobs: the runner flushes the page cache's dirty pages (`sync`) first. */
  writes: boolean;
  /** Untimed setup, once per registry. */
  prepare?(context: WorkloadContext): Promise<void>;
  /** One repetition; returns a figure per metric id. */
  run(context: WorkloadContext, meter: Meter, repetition: number): Promise<Record<string, number>>;
  /** Why the workload cannot run here, or undefined when it can. */
  unavailable?(): string | undefined;
}

const throughput = (id: string, title: string): Metric => ({
  id,
  title,
  unit: "MB/s",
  better: "higher",
  aggregate: "median",
});
const peakRss = (id: string, title: string): Metric => ({
  id,
  title,
  unit: "MiB",
  better: "lower",
  aggregate: "max",
});

/** Megabytes (10^6 bytes) per second, the unit disks and the issue quote. */
function megabytesPerSecond(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

/** Monolithic push of `size` bytes (POST, then PUT with the body), with the server's peak RSS. */
function monolithicPush(id: string, size: number, title: string): Workload {
  return {
    id,
    title,
    metrics: [throughput(id, title), peakRss(`${id}-peak-rss`, `server peak RSS, ${title}`)],
    writes: true,
    async run(context, meter, repetition) {
      const { client, registry } = context;
      const blob = context.content.blob(`${registry.name}/${id}/${repetition}`, size);
      blob.digest();
      const watch = await registry.process?.watchPeak();
      const { seconds } = await meter.time(() => client.pushMonolithic("bench/push", blob));
      const peak = watch === undefined ? Number.NaN : await watch();
      await client.verifyBlob("bench/push", blob.digest(), blob.size, title);
      context.state.set(`${id}-blob`, blob);
      return { [id]: megabytesPerSecond(size, seconds), [`${id}-peak-rss`]: peak / MiB };
    },
  };
}

const chunkedPush: Workload = {
  id: "push-chunked-256m",
  title: "chunked push 256 MiB in 8 MiB PATCHes",
  metrics: [throughput("push-chunked-256m", "chunked push 256 MiB / 8 MiB")],
  writes: true,
  async run(context, meter, repetition) {
    const { client, registry } = context;
    const blob = context.content.blob(`${registry.name}/chunked/${repetition}`, 256 * MiB);
    blob.digest();
    const { seconds } = await meter.time(() => client.pushChunked("bench/chunked", blob, 8 * MiB));
    await client.verifyBlob("bench/chunked", blob.digest(), blob.size, this.title);
    return { "push-chunked-256m": megabytesPerSecond(blob.size, seconds) };
  },
};

/** Pull of the last 1 GiB blob pushed (or one pushed now), hashed once untimed, then timed. */
const pull: Workload = {
  id: "pull-1g",
  title: "blob pull 1 GiB",
  metrics: [throughput("pull-1g", "pull 1 GiB")],
  writes: false,
  async prepare(context) {
    let blob = context.state.get("push-1g-blob") as BlobContent | undefined;
    if (blob === undefined) {
      blob = context.content.blob(`${context.registry.name}/pull`, GiB);
      await context.client.pushMonolithic("bench/push", blob);
    }
    const pulled = await context.client.pull("bench/push", blob.digest(), true);
    if (pulled.digest !== blob.digest() || pulled.bytes !== blob.size) {
      throw new Error(
        `pull of ${blob.digest()} (${blob.size} bytes) got ${pulled.digest} (${pulled.bytes} bytes)`,
      );
    }
    context.state.set("pull-blob", blob);
  },
  async run(context, meter) {
    const blob = context.state.get("pull-blob") as BlobContent;
    const { seconds, value } = await meter.time(() =>
      context.client.pull("bench/push", blob.digest(), false),
    );
    if (value.bytes !== blob.size) throw new Error(`pull got ${value.bytes} bytes of ${blob.size}`);
    return { "pull-1g": megabytesPerSecond(blob.size, seconds) };
  },
};

/** The small image the request-rate workloads read: a config, one 4 KiB layer, a tagged manifest. */
interface SmallImage {
  repository: string;
  tag: string;
  layerDigest: string;
  manifestDigest: string;
}

export const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

/** An OCI image manifest of `config` (a JSON blob) and one tar layer, as the bench pushes them. */
export function imageManifest(
  config: { digest: string; size: number },
  layer: { digest: string; size: number },
): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: config.digest,
        size: config.size,
      },
      layers: [
        {
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: layer.digest,
          size: layer.size,
        },
      ],
    }),
  );
}

async function smallImage(context: WorkloadContext): Promise<SmallImage> {
  const existing = context.state.get("small-image") as SmallImage | undefined;
  if (existing !== undefined) return existing;
  const repository = "bench/small";
  const { client, content, registry } = context;
  const layer = content.blob(`${registry.name}/small-layer`, 4096);
  await client.pushBytes(repository, layer.digest(), layer.bytes());
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [layer.digest()] },
    }),
  );
  const configDigest = digestOf(configBytes);
  await client.pushBytes(repository, configDigest, configBytes);
  const manifest = imageManifest(
    { digest: configDigest, size: configBytes.length },
    { digest: layer.digest(), size: layer.size },
  );
  const manifestDigest = digestOf(manifest);
  await client.putManifest(repository, "latest", MANIFEST_TYPE, manifest);
  const got = await client.getManifest(repository, "latest", MANIFEST_TYPE);
  if (!got.bytes.equals(manifest))
    throw new Error(`GET ${repository}:latest does not return the manifest put`);
  const image = { repository, tag: "latest", layerDigest: layer.digest(), manifestDigest };
  context.state.set("small-image", image);
  return image;
}

export function digestOf(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Autocannon against one URL with 32 keep-alive connections; req/s and p99 latency. */
function requestRate(
  id: string,
  title: string,
  method: "GET" | "HEAD",
  path: (image: SmallImage) => string,
  headers: Record<string, string> = {},
): Workload {
  return {
    id,
    title,
    metrics: [
      { id, title: `${title} (req/s)`, unit: "req/s", better: "higher", aggregate: "median" },
      { id: `${id}-p99`, title: `${title} p99`, unit: "ms", better: "lower", aggregate: "median" },
    ],
    writes: false,
    async prepare(context) {
      await smallImage(context);
    },
    async run(context, meter) {
      const image = await smallImage(context);
      const url = `${context.registry.url}${path(image)}`;
      const { value: result } = await meter.time(() =>
        autocannon({
          url,
          method,
          headers,
          connections: 32,
          pipelining: 1,
          duration: context.loadSeconds,
          setupClient: method === "HEAD" ? skipHeadBodies : undefined,
        }),
      );
      const failures = result.non2xx + result.errors + result.timeouts;
      if (failures > 0) {
        throw new Error(
          `${method} ${url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`,
        );
      }
      return { [id]: result.requests.total / result.duration, [`${id}-p99`]: result.latency.p99 };
    },
  };
}

/**
 * autocannon's response parser (http-parser-js) does not know a response answers a HEAD, so it
 * waits for the Content-Length bytes a HEAD response announces but never sends, and every
 * connection stalls. The parser skips the body when its headers-complete callback returns 1, so
 * wrap that callback as autocannon installs it (it is assigned after setupClient runs).
 */
function skipHeadBodies(client: autocannon.Client): void {
  const parser = (
    client as unknown as { parser: Record<PropertyKey, unknown> & { constructor: unknown } }
  ).parser;
  const key = (parser.constructor as { kOnHeadersComplete: number }).kOnHeadersComplete;
  let onHeadersComplete: (info: unknown) => unknown = () => undefined;
  Object.defineProperty(parser, key, {
    configurable: true,
    get: () => (info: unknown) => {
      onHeadersComplete(info);
      return 1;
    },
    set: (handler: (info: unknown) => unknown) => {
      onHeadersComplete = handler;
    },
  });
}

const SMALL_BLOBS = 500;
const SMALL_IN_FLIGHT = 16;
/**
 * Untimed pushes before the timed ones. A registry runs for days; a fresh Node process is still
 * tiering its upload path into optimized code during its first few hundred pushes (Berth measured
 * 354, 517, 586, 587 blobs/s over four repetitions while distribution stayed flat), so the bench
 * warms both registries alike and times the steady state ("warm"). A registry also pays that cost
 * after every deploy, so the first 500 pushes are reported too ("cold", issue 21): once per
 * registry process, reported with every repetition.
 */
const SMALL_COLD = 500;

/** The nearest-rank percentile `p` (0-100) of `values`, in the values' unit. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** The rate and per-push latencies (p50, p99, in ms) of `pushes`, 16 in flight. */
async function timedSmallPushes(
  context: WorkloadContext,
  meter: Meter | undefined,
  repository: string,
  label: string,
): Promise<{
  rate: number;
  p50: number;
  p99: number;
  /** The server's CPU seconds over the untimed (cold) pushes, when its process is known. */
  serverCpuSeconds: number | undefined;
  /** The bench's own CPU seconds over the untimed (cold) pushes. */
  clientCpuSeconds: number | undefined;
  blobs: { digest: string; bytes: Buffer }[];
}> {
  const { client, registry } = context;
  const count = meter === undefined ? SMALL_COLD : SMALL_BLOBS;
  const blobs = Array.from({ length: count }, (_, index) => {
    const blob = context.content.blob(`${registry.name}/${label}/${index}`, 4096);
    return { digest: blob.digest(), bytes: blob.bytes() };
  });
  const latencies: number[] = [];
  const push = async (blob: { digest: string; bytes: Buffer }) => {
    const start = process.hrtime.bigint();
    await client.pushBytes(repository, blob.digest, blob.bytes);
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  };
  const all = () => inParallel(blobs, SMALL_IN_FLIGHT, push);
  let seconds: number;
  let serverCpuSeconds: number | undefined;
  let clientCpuSeconds: number | undefined;
  if (meter === undefined) {
    const server = registry.process;
    const cpuBefore = await server?.cpuSeconds();
    const clientBefore = process.cpuUsage();
    const start = process.hrtime.bigint();
    await all();
    seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const clientSpent = process.cpuUsage(clientBefore);
    clientCpuSeconds = (clientSpent.user + clientSpent.system) / 1e6;
    const cpuAfter = await server?.cpuSeconds();
    if (cpuBefore !== undefined && cpuAfter !== undefined) serverCpuSeconds = cpuAfter - cpuBefore;
  } else {
    ({ seconds } = await meter.time(all));
  }
  return {
    rate: count / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    serverCpuSeconds,
    clientCpuSeconds,
    blobs,
  };
}

/**
 * The bench's client pushes `SMALL_COLD` × 3 blobs of 4 KiB to a sink in its own process
 * (bench/sink.ts) before the first cold phase, once per run: the cold row times a registry's first
 * pushes, and until then a client as fresh as the registry timed first spent 1.0–1.2 s of CPU
 * beside it over those 500 pushes, on two cores. Only the client gets warm; the registries are
 * other processes.
 */
let clientWarm: Promise<void> | undefined;
function warmClient(): Promise<void> {
  return (clientWarm ??= (async () => {
    const sink = await startSink();
    const sinkClient = new RegistryClient(sink.url);
    const bytes = Buffer.alloc(4096, 7);
    const digest = digestOf(bytes);
    try {
      const pushes = Array.from({ length: SMALL_COLD * 3 }, () => ({ digest, bytes }));
      await inParallel(pushes, SMALL_IN_FLIGHT, (blob) =>
        sinkClient.pushBytes("bench/warm-up", blob.digest, blob.bytes),
      );
    } finally {
      sinkClient.close();
      await sink.stop();
    }
  })());
}

const latency = (id: string, title: string): Metric => ({
  id,
  title,
  unit: "ms",
  better: "lower",
  aggregate: "median",
});

const smallPushes: Workload = {
  id: "push-small",
  title: `${SMALL_BLOBS} distinct 4 KiB blob pushes, ${SMALL_IN_FLIGHT} in flight (first ${SMALL_COLD} cold)`,
  metrics: [
    {
      id: "push-small",
      title: `${SMALL_BLOBS} × 4 KiB pushes, 16 in flight (warm)`,
      unit: "blobs/s",
      better: "higher",
      aggregate: "median",
    },
    latency("push-small-p50", "4 KiB push p50, warm"),
    latency("push-small-p99", "4 KiB push p99, warm"),
    {
      id: "push-small-cold",
      title: `first ${SMALL_COLD} × 4 KiB pushes (cold), 16 in flight`,
      unit: "blobs/s",
      better: "higher",
      aggregate: "median",
    },
    latency("push-small-cold-p50", "4 KiB push p50, cold"),
    latency("push-small-cold-p99", "4 KiB push p99, cold"),
  ],
  writes: true,
  async prepare(context) {
    // Real pushes of content neither registry has seen, under labels no timed push uses, so the
    // timed pushes still get no dedup shortcut. These are the cold figures; the timed repetitions
    // after them are warm.
    await warmClient();
    const cold = await timedSmallPushes(context, undefined, "bench/many-cold", "small-cold");
    context.state.set("push-small-cold", cold);
    process.stderr.write(
      `push-small ${context.registry.name}: first ${SMALL_COLD} pushes (cold) at ` +
        `${Math.round(cold.rate)} blobs/s, p50 ${cold.p50.toFixed(1)} ms, p99 ${cold.p99.toFixed(1)} ms` +
        (cold.serverCpuSeconds === undefined
          ? ""
          : `, server CPU ${cold.serverCpuSeconds.toFixed(2)} s`) +
        (cold.clientCpuSeconds === undefined
          ? ""
          : `, client CPU ${cold.clientCpuSeconds.toFixed(2)} s`) +
        "\n",
    );
  },
  async run(context, meter, repetition) {
    const repository = "bench/many";
    const warm = await timedSmallPushes(context, meter, repository, `small/${repetition}`);
    await inParallel(warm.blobs, SMALL_IN_FLIGHT, (blob) =>
      context.client.verifyBlob(repository, blob.digest, blob.bytes.length, this.title),
    );
    const cold = context.state.get("push-small-cold") as { rate: number; p50: number; p99: number };
    return {
      "push-small-cold": cold.rate,
      "push-small-cold-p50": cold.p50,
      "push-small-cold-p99": cold.p99,
      "push-small": warm.rate,
      "push-small-p50": warm.p50,
      "push-small-p99": warm.p99,
    };
  },
};

/**
 * `work` on every item, `limit` at a time. After a failure no item starts, and the first error is
 * thrown once those in flight have ended, so no request of a failed run overlaps the next run.
 */
export async function inParallel<T>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      try {
        await work(items[next++] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}

const SKOPEO_LAYERS = 5;

const skopeo: Workload = {
  id: "skopeo",
  title: `skopeo copy of a ${SKOPEO_LAYERS}-layer image (20 MiB layers) to and from the registry`,
  metrics: [
    {
      id: "skopeo-push",
      title: "skopeo push 5 × 20 MiB",
      unit: "s",
      better: "lower",
      aggregate: "median",
    },
    {
      id: "skopeo-pull",
      title: "skopeo pull 5 × 20 MiB",
      unit: "s",
      better: "lower",
      aggregate: "median",
    },
  ],
  writes: true,
  unavailable: () =>
    onPath("skopeo") ? undefined : "skopeo is not installed (apt package skopeo)",
  async run(context, meter, repetition) {
    const { client, registry } = context;
    const work = await mkdtemp(join(tmpdir(), "berth-bench-skopeo-"));
    try {
      const label = `${registry.name}/skopeo/${repetition}`;
      const layout = await writeImageLayout(
        join(work, "push"),
        context.content,
        label,
        SKOPEO_LAYERS,
        20 * MiB,
      );
      const reference = `docker://${registry.host}/bench/img:r${repetition}`;
      const pushed = await meter.time(() =>
        skopeoCopy(`oci:${layout.directory}:${LAYOUT_TAG}`, reference),
      );
      for (const layer of layout.layers) {
        await client.verifyBlob("bench/img", layer.digest, layer.size, "skopeo push");
      }
      const pulledDirectory = join(work, "pull");
      const pulled = await meter.time(() =>
        skopeoCopy(reference, `oci:${pulledDirectory}:${LAYOUT_TAG}`),
      );
      // skopeo checks every blob's digest as it downloads; the manifest must be the one pushed.
      const manifest = await readLayoutManifest(pulledDirectory);
      if (manifest.digest !== layout.manifest.digest) {
        throw new Error(
          `skopeo pulled manifest ${manifest.digest}, pushed ${layout.manifest.digest}`,
        );
      }
      return { "skopeo-push": pushed.seconds, "skopeo-pull": pulled.seconds };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
};

/** Every workload, in the order they run. */
export const WORKLOADS: Workload[] = [
  monolithicPush("push-256m", 256 * MiB, "monolithic push 256 MiB"),
  monolithicPush("push-1g", GiB, "monolithic push 1 GiB"),
  chunkedPush,
  pull,
  requestRate(
    "manifest-get",
    "manifest GET by tag",
    "GET",
    (image) => `/v2/${image.repository}/manifests/${image.tag}`,
    { accept: MANIFEST_TYPE },
  ),
  requestRate(
    "blob-head",
    "blob HEAD",
    "HEAD",
    (image) => `/v2/${image.repository}/blobs/${image.layerDigest}`,
  ),
  requestRate("v2-check", "GET /v2/", "GET", () => "/v2/"),
  smallPushes,
  skopeo,
];
