// `npm run bench:proxy`: the pull-through cache against a real upstream (docker-registry behind a
// counting proxy). 1) Single fetch: N concurrent GETs of an uncached blob (256 MiB by default) and
// how many times the upstream served it. 2) Hit versus local: manifest GETs (by tag, by digest)
// and blob GETs of a cached repository against the same requests on an ordinary repository of the
// same Berth holding the same image. Each client alternates a hit and a local request and every
// request is timed, so a load spike on the machine falls on both alike (whole rounds of one kind
// then the other gave ratios from 0.7 to 1.9 for the same code under a load average of 10);
// median and p90 latencies and the ratio of the medians on stdout.

import { Command } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDriver } from "../src/driver/index.js";
import { startRegistry } from "../src/server/index.js";
import { createRegistryStorage } from "../src/storage/index.js";
import { startDockerRegistry } from "../src/testing/docker-registry.js";
import { buildImage, pushImage } from "../src/testing/images.js";
import { startUpstreamProxy } from "../src/testing/upstream-proxy.js";

const MiB = 1024 * 1024;
const ACCEPT =
  "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

const program = new Command()
  .name("npm run bench:proxy --")
  .option("--blob-mib <n>", "size of the uncached blob fetched concurrently", Number, 256)
  .option("--clients <n>", "concurrent clients of the uncached blob", Number, 20)
  .option("--requests <n>", "requests of each kind (hit, local) per measure", Number, 2000)
  .option("--concurrency <n>", "requests in flight", Number, 8)
  .parse();
const options = program.opts<{
  blobMib: number;
  clients: number;
  requests: number;
  concurrency: number;
}>();

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function drain(response: Response): Promise<number> {
  if (response.status !== 200)
    throw new Error(`status ${response.status}: ${await response.text()}`);
  // Counted as it streams: 20 clients of a 256 MiB blob must not hold 5 GiB.
  let size = 0;
  for await (const chunk of response.body! as AsyncIterable<Uint8Array>) size += chunk.byteLength;
  return size;
}

/**
 * Latencies in milliseconds of `count` requests of each URL, `concurrency` clients in flight,
 * each client alternating between the URLs (starting at a different one) so both see the same load.
 */
async function measure(
  urls: readonly string[],
  count: number,
  concurrency: number,
  accept?: string,
): Promise<number[][]> {
  const latencies = urls.map((): number[] => []);
  const init = accept === undefined ? {} : { headers: { Accept: accept } };
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      for (let turn = client; next < count * urls.length; turn++) {
        next++;
        const which = turn % urls.length;
        const start = process.hrtime.bigint();
        await drain(await fetch(urls[which]!, init));
        latencies[which]!.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
    }),
  );
  return latencies;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "berth-bench-proxy-"));
  const image = buildImage({ layers: 1, layerSize: MiB });
  const big = buildImage({ layers: 1, layerSize: options.blobMib * MiB });
  try {
    log("writing the upstream's content");
    const upstreamStorage = createRegistryStorage(
      await createDriver("filesystem", { rootdirectory: join(dir, "upstream") }),
    );
    await pushImage(upstreamStorage.repository("lib/app"), image, "v1");
    await pushImage(upstreamStorage.repository("big"), big, "v1");
    const upstream = await startDockerRegistry(join(dir, "upstream"), { deleteEnabled: false });
    const counting = await startUpstreamProxy(upstream.url);
    const cache = await startRegistry({
      config: {
        version: "0.1",
        storage: {
          filesystem: { rootdirectory: join(dir, "cache") },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: { addr: "127.0.0.1:0" },
        log: { accesslog: { disabled: true } },
        proxy: { upstreams: [{ prefix: "up/", remoteurl: counting.url }] },
      },
      logLevel: "silent",
    });
    try {
      await pushImage(cache.storage.repository("local/app"), image, "v1");

      const layer = big.layers[0]!;
      const blobPath = `/v2/up/big/blobs/${layer.digest}`;
      log(`${options.clients} concurrent GETs of an uncached ${options.blobMib} MiB blob`);
      const start = Date.now();
      const sizes = await Promise.all(
        Array.from({ length: options.clients }, async () =>
          drain(await fetch(cache.url + blobPath)),
        ),
      );
      const seconds = (Date.now() - start) / 1000;
      if (sizes.some((size) => size !== layer.size)) throw new Error("a client got a short body");
      // The upstream knows the repository without the cache's prefix.
      const served = counting.count("GET", `/v2/big/blobs/${layer.digest}`);
      console.log(
        `single fetch: ${options.clients} clients x ${options.blobMib} MiB in ${seconds.toFixed(1)} s; upstream served the blob ${served} time(s)`,
      );

      const small = image.layers[0]!.digest;
      const paths = {
        "manifest by tag": ["/v2/up/lib/app/manifests/v1", "/v2/local/app/manifests/v1", ACCEPT],
        "manifest by digest": [
          `/v2/up/lib/app/manifests/${image.manifest.digest}`,
          `/v2/local/app/manifests/${image.manifest.digest}`,
          ACCEPT,
        ],
        "blob 1 MiB": [`/v2/up/lib/app/blobs/${small}`, `/v2/local/app/blobs/${small}`, undefined],
      } as const;
      // Warm the cache: every hit below is served from storage.
      for (const [hit] of Object.values(paths)) await measure([cache.url + hit], 2, 1, ACCEPT);
      const upstreamBefore = counting.requests.length;
      console.log(
        `measure (ms, ${options.concurrency} in flight)  hit p50  local p50  hit p90  local p90  hit/local p50`,
      );
      for (const [name, [hit, local, accept]] of Object.entries(paths)) {
        // A warm-up of both before the counted requests.
        await measure([cache.url + hit, cache.url + local], 200, options.concurrency, accept);
        const [hits, locals] = await measure(
          [cache.url + hit, cache.url + local],
          options.requests,
          options.concurrency,
          accept,
        );
        const [h50, l50, h90, l90] = [
          percentile(hits!, 0.5),
          percentile(locals!, 0.5),
          percentile(hits!, 0.9),
          percentile(locals!, 0.9),
        ];
        console.log(
          `${name.padEnd(28)} ${[h50, l50, h90, l90].map((v) => v.toFixed(3).padStart(9)).join(" ")}  ${(h50 / l50).toFixed(2).padStart(13)}`,
        );
      }
      console.log(
        `upstream requests during the hit measures: ${counting.requests.length - upstreamBefore}`,
      );
    } finally {
      await cache.close();
      await counting.stop();
      await upstream.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
