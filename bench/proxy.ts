// `npm run bench:proxy`: the pull-through cache against a real upstream (docker-registry behind a
// counting proxy). 1) Single fetch: N concurrent GETs of an uncached blob (256 MiB by default) and
// how many times the upstream served it. 2) Hit versus local: manifest GETs (by tag, by digest)
// and blob GETs of a cached repository against the same requests on an ordinary repository of the
// same Berth holding the same image, rounds alternating so drift hits both alike; medians and
// ratios on stdout.

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
  .option("--requests <n>", "requests per round of each hit/local measure", Number, 400)
  .option("--rounds <n>", "alternating rounds (the median counts)", Number, 5)
  .option("--concurrency <n>", "requests in flight in each round", Number, 8)
  .parse();
const options = program.opts<{
  blobMib: number;
  clients: number;
  requests: number;
  rounds: number;
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

/** Milliseconds per request, `count` requests of `url` with `concurrency` in flight. */
async function measure(
  url: string,
  count: number,
  concurrency: number,
  accept?: string,
): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        await drain(await fetch(url, accept === undefined ? {} : { headers: { Accept: accept } }));
      }
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e6 / count;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
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
      for (const [hit] of Object.values(paths)) await measure(cache.url + hit, 2, 1, ACCEPT);
      const upstreamBefore = counting.requests.length;
      console.log("measure              hit ms/req  local ms/req  hit/local");
      for (const [name, [hit, local, accept]] of Object.entries(paths)) {
        const hits: number[] = [];
        const locals: number[] = [];
        for (let round = 0; round < options.rounds; round++) {
          const order = round % 2 === 0 ? ["hit", "local"] : ["local", "hit"];
          for (const which of order) {
            const url = cache.url + (which === "hit" ? hit : local);
            const ms = await measure(url, options.requests, options.concurrency, accept);
            (which === "hit" ? hits : locals).push(ms);
          }
        }
        const h = median(hits);
        const l = median(locals);
        console.log(
          `${name.padEnd(20)} ${h.toFixed(3).padStart(10)}  ${l.toFixed(3).padStart(12)}  ${(h / l).toFixed(2).padStart(9)}`,
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
