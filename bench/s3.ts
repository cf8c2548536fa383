// `npm run bench -- --driver s3` (issue 21 item 3): Berth's s3 driver against distribution 2.8.2's
// on one RADOS Gateway, each in its own bucket, redirects off for both (the registry serves the
// bytes, as many private clusters run), through the usual workloads. Then the requests each sends
// to its backend for one skopeo push and pull of an image: counted for both from RGW's own access
// log (its `beast:` lines, one per HTTP request), and for Berth on azure (Azurite) from Berth's
// `registry_storage_backend_requests_total`, as no log of Azurite's counts them.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ContentSource } from "./content.js";
import { ProcessStats } from "./process.js";
import { startBerth, startDistribution, type RegistryUnderTest } from "./registries.js";
import { LAYOUT_TAG, skopeoCopy, writeImageLayout } from "./skopeo.js";
import { startAzurite } from "../src/testing/azurite.js";
import { readRgwRequests, startCeph, type CephCluster } from "../src/testing/ceph.js";
import { freePort } from "../src/testing/docker-registry.js";
import { scrapeMetrics } from "../src/testing/prometheus.js";

const MiB = 1024 * 1024;
const BERTH_BUCKET = "berth-bench";
const DISTRIBUTION_BUCKET = "distribution-bench";

/** The workloads of --driver s3 unless --only names others. */
export const S3_WORKLOADS = ["push-1g", "pull-1g", "push-small", "manifest-get", "blob-head"];

/** How the bench starts Berth (its CLI, profiling, environment). */
export interface BerthStart {
  cli: string | undefined;
  cpuProfileDir: string | undefined;
  env: Record<string, string>;
}

/**
 * A throwaway Ceph cluster (bluestore, with radosgw), `prepare`d, and the registries `starts`
 * starts on it one after the other; when one fails, those already started and the cluster stop.
 */
export async function registriesOnCeph(
  progress: (message: string) => void,
  prepare: (ceph: CephCluster) => Promise<void>,
  starts: ((ceph: CephCluster) => Promise<RegistryUnderTest>)[],
): Promise<{ ceph: CephCluster; registries: RegistryUnderTest[] }> {
  const ceph = await startCeph({ objectStore: "bluestore" });
  const registries: RegistryUnderTest[] = [];
  try {
    progress(`Ceph (bluestore, with radosgw) up in ${ceph.startMs} ms at ${ceph.endpoint}`);
    await prepare(ceph);
    for (const start of starts) registries.push(await start(ceph));
  } catch (error) {
    await Promise.all(registries.map((registry) => registry.stop()));
    await ceph.stop();
    throw error;
  }
  return { ceph, registries };
}

/** Berth on s3 and distribution on s3, on one throwaway Ceph cluster's gateway. */
export async function startOnRgw(
  berth: BerthStart,
  progress: (message: string) => void,
): Promise<{
  registries: RegistryUnderTest[];
  note: string;
  cleanup: () => Promise<void>;
  ceph: CephCluster;
}> {
  const { ceph, registries } = await registriesOnCeph(
    progress,
    async (cluster) => {
      await cluster.createBucket(BERTH_BUCKET);
      await cluster.createBucket(DISTRIBUTION_BUCKET);
    },
    [
      (cluster) =>
        startBerth({
          ...berth,
          name: "Berth s3",
          storage: { s3: s3Parameters(cluster, BERTH_BUCKET), redirect: { disable: true } },
        }),
      (cluster) =>
        startDistribution({
          name: "distribution s3",
          storage: {
            s3: s3Parameters(cluster, DISTRIBUTION_BUCKET),
            redirect: { disable: true },
          },
        }),
    ],
  );
  // Both registries' requests go to the same daemons, one registry's repetition at a time.
  const backendCpuSeconds = async () => {
    const seconds = ceph.daemonPids().map((pid) => new ProcessStats(pid).cpuSeconds());
    return (await Promise.all(seconds)).reduce((sum, each) => sum + each, 0);
  };
  return {
    registries: registries.map((registry) => ({ ...registry, backendCpuSeconds })),
    ceph,
    note: "one Ceph cluster (1 monitor, 1 OSD on bluestore, radosgw) serves both, a bucket each, redirects off",
    cleanup: () => ceph.stop(),
  };
}

/** The s3 section both registries get: distribution 2.8.2's keys, path-style on the endpoint. */
export function s3Parameters(ceph: CephCluster, bucket: string): Record<string, unknown> {
  return {
    bucket,
    region: ceph.region,
    regionendpoint: ceph.endpoint,
    accesskey: ceph.accessKey,
    secretkey: ceph.secretKey,
    secure: false,
  };
}

/** Backend requests of one image's push and pull through one registry. */
export interface RequestCount {
  registry: string;
  /** Where the count comes from: RGW's access log or Berth's metric. */
  source: string;
  layers: number;
  push: number;
  pull: number;
  /** The same requests by the backend's operation. */
  pushByOperation: Record<string, number>;
  pullByOperation: Record<string, number>;
}

/** Requests counted so far, by operation. */
type Counter = () => Promise<Record<string, number>>;

/** The image the counts are for: 4 layers of 12 MiB (above the 10 MiB chunk size) and a config. */
const LAYERS = 4;
const LAYER_BYTES = 12 * MiB;

/**
 * Pushes and pulls one image with skopeo through each s3 registry and through Berth on Azurite,
 * counting the backend requests of each. Distribution's and Berth's s3 counts come from the
 * gateway's log, by bucket; Berth on azure's from its metric.
 */
export async function countBackendRequests(
  ceph: CephCluster,
  registries: RegistryUnderTest[],
  content: ContentSource,
  berth: BerthStart,
  progress: (message: string) => void,
): Promise<RequestCount[]> {
  const counts: RequestCount[] = [];
  const buckets = [BERTH_BUCKET, DISTRIBUTION_BUCKET];
  for (const [index, registry] of registries.entries()) {
    const bucket = buckets[index] as string;
    const counter: Counter = () => rgwRequests(ceph, bucket);
    counts.push(await countImage(registry, content, "RGW access log", counter));
  }
  const azurite = await startAzurite();
  let azure: RegistryUnderTest | undefined;
  try {
    await azurite.createContainer(BERTH_BUCKET);
    const debug = `127.0.0.1:${await freePort()}`;
    azure = await startBerth({
      ...berth,
      name: "Berth azure",
      storage: {
        azure: {
          accountname: azurite.accountName,
          accountkey: azurite.accountKey,
          container: BERTH_BUCKET,
          serviceurl: azurite.serviceUrl,
        },
        redirect: { disable: true },
      },
      http: { debug: { addr: debug, prometheus: { enabled: true } } },
    });
    const counter: Counter = async () => {
      const scrape = await scrapeMetrics(`http://${debug}/metrics`);
      const counts: Record<string, number> = {};
      for (const sample of scrape.samples) {
        if (sample.name !== "registry_storage_backend_requests_total") continue;
        const operation = sample.labels.operation ?? "unknown";
        counts[operation] = (counts[operation] ?? 0) + sample.value;
      }
      return counts;
    };
    counts.push(await countImage(azure, content, "Berth's metric (Azurite)", counter));
  } finally {
    await azure?.stop();
    await azurite.stop();
  }
  for (const count of counts) {
    progress(
      `backend requests ${count.registry} (${count.source}): push ${count.push} ` +
        `${JSON.stringify(count.pushByOperation)}, pull ${count.pull} ` +
        `${JSON.stringify(count.pullByOperation)} for ${count.layers} layers`,
    );
  }
  return counts;
}

async function countImage(
  registry: RegistryUnderTest,
  content: ContentSource,
  source: string,
  counter: Counter,
): Promise<RequestCount> {
  const work = await mkdtemp(join(tmpdir(), "berth-bench-requests-"));
  try {
    const layout = await writeImageLayout(
      join(work, "push"),
      content,
      `${registry.name}/requests`,
      LAYERS,
      LAYER_BYTES,
    );
    const reference = `docker://${registry.host}/bench/requests:v1`;
    const start = await counter();
    await skopeoCopy(`oci:${layout.directory}:${LAYOUT_TAG}`, reference);
    const pushed = await counter();
    await skopeoCopy(reference, `oci:${join(work, "pull")}:${LAYOUT_TAG}`);
    const pulled = await counter();
    const pushByOperation = difference(pushed, start);
    const pullByOperation = difference(pulled, pushed);
    return {
      registry: registry.name,
      source,
      layers: LAYERS,
      push: total(pushByOperation),
      pull: total(pullByOperation),
      pushByOperation,
      pullByOperation,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function difference(after: Record<string, number>, before: Record<string, number>) {
  const counts: Record<string, number> = {};
  for (const [operation, count] of Object.entries(after)) {
    const added = count - (before[operation] ?? 0);
    if (added > 0) counts[operation] = added;
  }
  return counts;
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/**
 * The S3 operation of a logged request, from its method and query (the log has no headers: a
 * CopyObject is a PUT like a PutObject, and is named for both).
 */
function s3Operation(method: string, target: string): string {
  const query = new URLSearchParams(
    target.includes("?") ? target.slice(target.indexOf("?") + 1) : "",
  );
  const key = target.split("?")[0]!.split("/").slice(2).join("/");
  const has = (name: string) => query.has(name);
  switch (method) {
    case "POST":
      if (has("uploads")) return "CreateMultipartUpload";
      if (has("uploadId")) return "CompleteMultipartUpload";
      return has("delete") ? "DeleteObjects" : "POST";
    case "PUT":
      if (has("partNumber")) return "UploadPart(Copy)";
      return "PutObject/CopyObject";
    case "GET":
      if (key === "" && query.get("list-type") === "2") return "ListObjectsV2";
      if (key === "" && has("uploads")) return "ListMultipartUploads";
      if (key === "") return "ListObjects";
      return has("uploadId") ? "ListParts" : "GetObject";
    case "HEAD":
      return key === "" ? "HeadBucket" : "HeadObject";
    case "DELETE":
      return has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
    default:
      return method;
  }
}

/**
 * Requests RGW has logged for `bucket` so far, by operation. A marker request (an anonymous GET of a missing
 * key, not counted) is sent first and waited for in the log, which the gateway writes a moment
 * after each request.
 */
async function rgwRequests(ceph: CephCluster, bucket: string): Promise<Record<string, number>> {
  const marker = `berth-marker-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  await fetch(`${ceph.endpoint}/${bucket}/${marker}`).then((answer) => answer.arrayBuffer());
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const requests = await readRgwRequests(ceph.rgwLog);
    const at = requests.findIndex((request) => request.target.includes(marker));
    if (at >= 0) {
      const counts: Record<string, number> = {};
      for (const request of requests.slice(0, at)) {
        const { target } = request;
        if (target.includes("berth-marker-")) continue;
        if (!target.startsWith(`/${bucket}/`) && !target.startsWith(`/${bucket}?`)) continue;
        const operation = s3Operation(request.method, target);
        counts[operation] = (counts[operation] ?? 0) + 1;
      }
      return counts;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`RGW did not log the marker request ${marker} within 10 s`);
}

/** The `--json` lines of the request counts: one per registry, with the counts by operation. */
export function requestCountLines(counts: RequestCount[]): unknown[] {
  return counts.map((count) => ({
    type: "backend-requests",
    ...count,
    pushPerLayer: count.push / count.layers,
    pullPerLayer: count.pull / count.layers,
  }));
}

/** The request-count table, one line per registry. */
export function formatRequestCounts(counts: RequestCount[]): string {
  const lines = [
    "backend requests for one skopeo push and pull of an image (4 × 12 MiB layers, a config, a manifest)",
    "| registry | counted from | push | per pushed layer | pull | per pulled layer |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const count of counts) {
    lines.push(
      `| ${count.registry} | ${count.source} | ${count.push} | ${(count.push / count.layers).toFixed(1)} | ${count.pull} | ${(count.pull / count.layers).toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}
