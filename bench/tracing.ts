// `node dist/bench/tracing.js`: what tracing costs. Each run is a child process serving manifest
// GETs (by tag, in-memory storage, 16 keep-alive clients for a few seconds) with tracing off (no
// OTEL_* variables) or on (OTLP http/json to a collector in this process that drops what it gets,
// every request sampled, with its driver calls). Runs alternate off/on so that drift on a shared
// machine hits both alike; the median of each is reported in requests per second and CPU
// microseconds per request (registry and client share the process; the client's share is the same
// in every mode). A third mode has tracing on with no request sampled (OTEL_TRACES_SAMPLER=always_off).

import { execFile } from "node:child_process";
import { once } from "node:events";
import { Agent, createServer, request } from "node:http";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const seconds = Number(process.env.BENCH_SECONDS ?? 4);
const repetitions = Number(process.env.BENCH_REPETITIONS ?? 3);

interface RunResult {
  requests: number;
  cpuMicros: number;
}

async function get(agent: Agent, url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request(
      url,
      { agent, headers: { Accept: "application/vnd.oci.image.manifest.v1+json" } },
      (res) => {
        res.resume();
        res.once("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
        );
      },
    );
    req.once("error", reject);
    req.end();
  });
}

/** In the child: serve, load, print the figures as JSON. */
async function child(): Promise<void> {
  const { startRegistry } = await import("../src/server/index.js");
  const registry = await startRegistry({ driver: "inmemory", logLevel: "silent" });
  const config = JSON.stringify({ architecture: "amd64", os: "linux" });
  const { createHash } = await import("node:crypto");
  const digest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
  await fetch(`${registry.url}/v2/bench/app/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: config,
  });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest, size: config.length },
    layers: [],
  });
  const put = await fetch(`${registry.url}/v2/bench/app/manifests/v1`, {
    method: "PUT",
    headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  if (put.status !== 201) throw new Error(`manifest push: ${put.status}`);
  const url = `${registry.url}/v2/bench/app/manifests/v1`;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  for (let i = 0; i < 200; i++) await get(agent, url);
  let requests = 0;
  const deadline = performance.now() + seconds * 1000;
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < deadline) {
        await get(agent, url);
        requests++;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  agent.destroy();
  await registry.close();
  // The client runs in this process too: its share is the same in both modes.
  const result: RunResult = { requests, cpuMicros: (used.user + used.system) / requests };
  process.stdout.write(JSON.stringify(result));
}

async function main(): Promise<void> {
  const collector = createServer((req, res) => {
    req.resume();
    req.once("end", () => res.writeHead(200, { "Content-Type": "application/json" }).end("{}"));
  });
  collector.listen(0, "127.0.0.1");
  await once(collector, "listening");
  const { port } = collector.address() as { port: number };
  const self = fileURLToPath(import.meta.url);
  const modes = {
    off: {},
    on: {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`,
    },
    // On, but no request sampled: what propagating the context costs without recording spans.
    unsampled: {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`,
      OTEL_TRACES_SAMPLER: "always_off",
    },
  };
  const results: Record<string, RunResult[]> = { off: [], on: [], unsampled: [] };
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const [mode, env] of Object.entries(modes)) {
      const clean = Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !name.startsWith("OTEL_")),
      );
      const { stdout } = await execFileAsync(process.execPath, [self, "--child"], {
        env: { ...clean, ...env },
      });
      const result = JSON.parse(stdout) as RunResult;
      results[mode]!.push(result);
      process.stderr.write(
        `${mode}: ${(result.requests / seconds).toFixed(0)} req/s, ${result.cpuMicros.toFixed(0)} µs CPU/request\n`,
      );
    }
  }
  collector.close();
  const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1]!;
  for (const mode of Object.keys(modes)) {
    const rate = median(results[mode]!.map((result) => result.requests / seconds));
    const cpu = median(results[mode]!.map((result) => result.cpuMicros));
    process.stdout.write(
      `tracing ${mode.padEnd(9)}  ${rate.toFixed(0).padStart(6)} req/s  ${cpu.toFixed(0).padStart(5)} µs CPU/request (median of ${repetitions})\n`,
    );
  }
}

if (process.argv.includes("--child")) await child();
else await main();
