// zb-style concurrent workloads (issue 21 item 4): the tests of zot's `zb` benchmark (cmd/zb),
// written again for this bench. A request is one image (a config and one layer): a pull is HEAD
// and GET of the manifest, then HEAD and GET of the config and of the layer, the layer streamed
// and counted; a push is the layer (one PUT, or for zb's "Chunk Streamed" one PATCH of the whole
// layer then a PUT), the config and the manifest, into a repository of its own. `concurrency`
// requests are in flight; latency is per image, from its first request to its last byte.
// Differences from zb, on purpose: every pushed layer is new content (zb pushes one file per size
// again and again, which a registry may dedup); the proportions of a mix are exact and only their
// order is drawn (from the run's seed), where zb draws each request; pull workloads push their
// images before the clock starts (zb's clock includes that push); throughput counts layer bytes.

import { createHash } from "node:crypto";
import type { BlobContent } from "./content.js";
import {
  digestOf,
  imageManifest,
  inParallel,
  MANIFEST_TYPE,
  type Metric,
  type Workload,
  type WorkloadContext,
} from "./workloads.js";

const MiB = 1024 * 1024;

/** One layer size of a workload and the share of its requests that use it. */
export interface ZbSize {
  bytes: number;
  share: number;
}

/** A zb-style workload, as data. */
export interface ZbSpec {
  /** `zb-<kind>-<size>-c<concurrency>`, what --only selects. */
  id: string;
  /** The zb test it mirrors, by zb's name. */
  zbName: string;
  /** Requests (images) in flight at once. */
  concurrency: number;
  /** The layer sizes; their shares add up to 1. */
  sizes: ZbSize[];
  /** The share of requests that push an image; the others pull one. */
  pushShare: number;
  /** How a push sends its layer: one PUT, or one PATCH of the whole layer and a closing PUT. */
  upload: "monolithic" | "chunked";
  /** Part of a default `npm run bench` (the others run when --only names them). */
  byDefault: boolean;
}

/** zb's sizes: its "1MB" is 1 MiB. */
const ONE = MiB;
const TEN = 10 * MiB;
const HUNDRED = 100 * MiB;
const only = (bytes: number): ZbSize[] => [{ bytes, share: 1 }];
const MIXED_PULL: ZbSize[] = [
  { bytes: ONE, share: 0.2 },
  { bytes: TEN, share: 0.7 },
  { bytes: HUNDRED, share: 0.1 },
];
const THIRDS: ZbSize[] = [ONE, TEN, HUNDRED].map((bytes) => ({ bytes, share: 1 / 3 }));

type Shape = Omit<ZbSpec, "id" | "concurrency" | "byDefault"> & { key: string };

/** zb's test list (its catalog and sync tests aside), per size where zb has one per size. */
const SHAPES: Shape[] = [
  ...(
    [
      ["1m", "1MB", ONE],
      ["10m", "10MB", TEN],
      ["100m", "100MB", HUNDRED],
    ] as const
  ).flatMap(([key, name, bytes]): Shape[] => [
    {
      key: `pull-${key}`,
      zbName: `Pull ${name}`,
      sizes: only(bytes),
      pushShare: 0,
      upload: "monolithic",
    },
    {
      key: `push-mono-${key}`,
      zbName: `Push Monolith ${name}`,
      sizes: only(bytes),
      pushShare: 1,
      upload: "monolithic",
    },
    {
      key: `push-chunk-${key}`,
      zbName: `Push Chunk Streamed ${name}`,
      sizes: only(bytes),
      pushShare: 1,
      upload: "chunked",
    },
    {
      key: `mix-${key}`,
      zbName: `Pull 75% and Push 25% Mixed ${name}`,
      sizes: only(bytes),
      pushShare: 0.25,
      upload: "monolithic",
    },
  ]),
  {
    key: "pull-mixed",
    zbName: "Pull Mixed 20% 1MB, 70% 10MB, 10% 100MB",
    sizes: MIXED_PULL,
    pushShare: 0,
    upload: "monolithic",
  },
  {
    key: "push-mono-mixed",
    zbName: "Push Monolith Mixed 20% 1MB, 70% 10MB, 10% 100MB",
    sizes: MIXED_PULL,
    pushShare: 1,
    upload: "monolithic",
  },
  {
    key: "push-chunk-mixed",
    zbName: "Push Chunk Mixed 33% 1MB, 33% 10MB, 33% 100MB",
    sizes: THIRDS,
    pushShare: 1,
    upload: "chunked",
  },
];

/**
 * What a default run includes: each kind of request and each size at least once, both
 * concurrencies, within about 2-3 minutes for both registries (docs/performance.md).
 */
const DEFAULT_IDS = new Set([
  "zb-pull-1m-c50",
  "zb-pull-10m-c10",
  "zb-pull-100m-c10",
  "zb-pull-mixed-c10",
  "zb-push-mono-10m-c10",
  "zb-push-chunk-10m-c10",
  "zb-mix-10m-c10",
  "zb-mix-10m-c50",
]);

/** Every zb-style workload: each shape at concurrency 10 and at 50. */
export const ZB_SPECS: ZbSpec[] = [10, 50].flatMap((concurrency) =>
  SHAPES.map(({ key, ...shape }) => {
    const id = `zb-${key}-c${concurrency}`;
    return { ...shape, id, concurrency, byDefault: DEFAULT_IDS.has(id) };
  }),
);

/** How many requests a run makes. */
export interface ZbSettings {
  /** Requests per timed run (zb's -n); default: images for RUN_BYTES, at least the concurrency. */
  requests?: number | undefined;
}

/** Layer bytes a default run moves (about; at least one request per worker). */
const RUN_BYTES = 100 * MiB;

/** The requests of one timed run of `spec`. */
export function requestCount(spec: ZbSpec, settings: ZbSettings = {}): number {
  if (settings.requests !== undefined) return settings.requests;
  const mean = spec.sizes.reduce((sum, size) => sum + size.bytes * size.share, 0);
  return Math.max(spec.concurrency, Math.ceil(RUN_BYTES / mean));
}

/** A uniform [0, 1) generator (mulberry32) seeded by the SHA-256 of `seed`. */
export function seededRandom(seed: string): () => number {
  let state = createHash("sha256").update(seed).digest().readUInt32BE(0);
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One request of a run: pull or push an image whose layer has `bytes` bytes. */
export interface ZbOperation {
  push: boolean;
  bytes: number;
}

/**
 * The `count` requests of a run: each kind (pull or push, times size) as many times as its share
 * of `count` rounds to (largest remainder, so they add up to `count`), in an order shuffled by
 * `seed`. Exact proportions, because at a few dozen requests independent draws would often give
 * the 10% share none or twice its due.
 */
export function planOperations(spec: ZbSpec, count: number, seed: string): ZbOperation[] {
  const kinds = [false, true].flatMap((push) => {
    const share = push ? spec.pushShare : 1 - spec.pushShare;
    return share === 0
      ? []
      : spec.sizes.map((size) => ({
          push,
          bytes: size.bytes,
          // Rounded so that 15 × 0.7 is 10.5, not 10.499999999999998.
          quota: Math.round(count * share * size.share * 1e9) / 1e9,
        }));
  });
  const counts = kinds.map((kind) => Math.floor(kind.quota));
  let left = count - counts.reduce((sum, n) => sum + n, 0);
  const byRemainder = kinds
    .map((kind, index) => ({ index, remainder: kind.quota - Math.floor(kind.quota) }))
    .sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  for (const { index } of byRemainder) {
    if (left-- <= 0) break;
    counts[index] = (counts[index] as number) + 1;
  }
  const operations = kinds.flatMap((kind, index) =>
    Array.from({ length: counts[index] as number }, () => ({ push: kind.push, bytes: kind.bytes })),
  );
  const random = seededRandom(seed);
  for (let i = operations.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [operations[i], operations[j]] = [operations[j] as ZbOperation, operations[i] as ZbOperation];
  }
  return operations;
}

/** The `p`th percentile as zb reads it: the value at index ⌊n·p/100⌋ of the sorted values. */
export function zbPercentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number;
}

/** The config every image of the bench carries (zb too pushes one config for all its images). */
const CONFIG = Buffer.from(
  JSON.stringify({
    architecture: "amd64",
    os: "linux",
    author: "berth-bench",
    rootfs: { type: "layers", diff_ids: [] },
  }),
);
const CONFIG_BLOB = { digest: digestOf(CONFIG), size: CONFIG.length };

/** An image in a registry, as a pull reads it. */
interface StoredImage {
  repository: string;
  tag: string;
  manifestDigest: string;
}

/** Pushes a one-layer image as zb does: the layer, the config, then the manifest by tag. */
async function pushImage(
  context: WorkloadContext,
  repository: string,
  layer: BlobContent,
  upload: ZbSpec["upload"],
): Promise<StoredImage> {
  const { client } = context;
  if (upload === "monolithic") await client.pushMonolithic(repository, layer);
  else await client.pushChunked(repository, layer, layer.size);
  await client.pushBytes(repository, CONFIG_BLOB.digest, CONFIG);
  const manifest = imageManifest(CONFIG_BLOB, { digest: layer.digest(), size: layer.size });
  await client.putManifest(repository, "latest", MANIFEST_TYPE, manifest);
  return { repository, tag: "latest", manifestDigest: digestOf(manifest) };
}

/**
 * Pulls an image as zb does; returns the layer bytes read. The manifest's digest is always
 * checked, the config's too (it is small); the layer's when `hash` is set (a sample: hashing
 * every layer would spend the client's CPU, which the server shares).
 */
async function pullImage(
  context: WorkloadContext,
  image: StoredImage,
  hash: boolean,
): Promise<number> {
  const { client } = context;
  const { repository, tag, manifestDigest } = image;
  const head = await client.headManifest(repository, tag, MANIFEST_TYPE);
  if (head.digest !== undefined && head.digest !== manifestDigest)
    throw new Error(`HEAD ${repository}:${tag} answers ${head.digest}, pushed ${manifestDigest}`);
  const got = await client.getManifest(repository, tag, MANIFEST_TYPE);
  if (digestOf(got.bytes) !== manifestDigest)
    throw new Error(`GET ${repository}:${tag} is not the manifest pushed (${manifestDigest})`);
  const manifest = JSON.parse(got.bytes.toString("utf8")) as {
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  let layerBytes = 0;
  for (const [index, blob] of [manifest.config, ...manifest.layers].entries()) {
    await client.verifyBlob(repository, blob.digest, blob.size, `zb pull of ${repository}`);
    const pulled = await client.pull(repository, blob.digest, index === 0 || hash);
    if (pulled.bytes !== blob.size)
      throw new Error(`GET ${blob.digest}: ${pulled.bytes} bytes of ${blob.size}`);
    if (pulled.digest !== undefined && pulled.digest !== blob.digest)
      throw new Error(`GET ${blob.digest} in ${repository} returned bytes of ${pulled.digest}`);
    if (index > 0) layerBytes += pulled.bytes;
  }
  return layerBytes;
}

/** One image per layer size for the pulls, pushed once per registry (untimed) and checked. */
async function imageToPull(context: WorkloadContext, bytes: number): Promise<StoredImage> {
  const key = `zb-image-${bytes}`;
  const existing = context.state.get(key) as StoredImage | undefined;
  if (existing !== undefined) return existing;
  const layer = context.content.blob(`${context.registry.name}/zb/pull/${bytes}`, bytes);
  const image = await pushImage(context, `zb/pull-${bytes}`, layer, "monolithic");
  await pullImage(context, image, true);
  context.state.set(key, image);
  return image;
}

/** Every how many requests a pulled layer is hashed, and a pushed image read back. */
const SAMPLE_EVERY = 8;

const metric = (id: string, title: string, unit: string, higher: boolean): Metric => ({
  id,
  title,
  unit,
  better: higher ? "higher" : "lower",
  aggregate: "median",
});

/** `spec` as a workload of the bench's runner (bench/main.ts): one timed run per repetition. */
export function zbWorkload(spec: ZbSpec, settings: ZbSettings = {}): Workload {
  const count = requestCount(spec, settings);
  const name = `zb ${spec.zbName}, c=${spec.concurrency}`;
  const { id } = spec;
  return {
    id,
    title: `${name}: ${count} images per run`,
    metrics: [
      metric(id, `${name} (MB/s of layers)`, "MB/s", true),
      metric(`${id}-p50`, `${name} p50 per image`, "ms", false),
      metric(`${id}-p90`, `${name} p90 per image`, "ms", false),
      metric(`${id}-p99`, `${name} p99 per image`, "ms", false),
    ],
    writes: spec.pushShare > 0,
    async prepare(context) {
      if (spec.pushShare === 1) return;
      for (const size of spec.sizes) await imageToPull(context, size.bytes);
    },
    async run(context, meter, repetition) {
      const { content, registry } = context;
      const plan = planOperations(
        spec,
        count,
        `${content.seed.toString("hex")}/${id}/${repetition}`,
      );
      // Before the clock: the digests of the new layers this run pushes, and the images it pulls.
      const layers = plan.map((operation, index) => {
        if (!operation.push) return undefined;
        const layer = content.blob(
          `${registry.name}/${id}/${repetition}/${index}`,
          operation.bytes,
        );
        layer.digest();
        return layer;
      });
      const pulls = new Map<number, StoredImage>();
      for (const operation of plan) {
        if (!operation.push)
          pulls.set(operation.bytes, await imageToPull(context, operation.bytes));
      }
      const latencies: number[] = [];
      const pushed: StoredImage[] = [];
      let bytes = 0;
      const request = async (index: number) => {
        const operation = plan[index] as ZbOperation;
        const layer = layers[index];
        const start = process.hrtime.bigint();
        if (layer !== undefined) {
          const repository = `zb/${id}/r${repetition}-${index}`;
          const image = await pushImage(context, repository, layer, spec.upload);
          if (index % SAMPLE_EVERY === 0) pushed.push(image);
          bytes += layer.size;
        } else {
          const image = pulls.get(operation.bytes) as StoredImage;
          // Not `bytes += await ...`: that reads `bytes` before the await and loses the others' adds.
          const pulled = await pullImage(context, image, index % SAMPLE_EVERY === 0);
          bytes += pulled;
        }
        latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
      };
      const indexes = plan.map((_, index) => index);
      const { seconds } = await meter.time(() => inParallel(indexes, spec.concurrency, request));
      // After the clock: a sample of the pushed images reads back as pushed.
      for (const image of pushed) await pullImage(context, image, true);
      latencies.sort((a, b) => a - b);
      return {
        [id]: bytes / 1e6 / seconds,
        [`${id}-p50`]: zbPercentile(latencies, 50),
        [`${id}-p90`]: zbPercentile(latencies, 90),
        [`${id}-p99`]: zbPercentile(latencies, 99),
        [`${id}-images-per-s`]: count / seconds,
        [`${id}-requests`]: count,
      };
    },
  };
}

/** The zb-style workloads with `settings`, in ZB_SPECS's order. */
export function zbWorkloads(settings: ZbSettings = {}): Workload[] {
  return ZB_SPECS.map((spec) => zbWorkload(spec, settings));
}

/** The ids a default run includes. */
export const ZB_DEFAULT_IDS = ZB_SPECS.filter((spec) => spec.byDefault).map((spec) => spec.id);
