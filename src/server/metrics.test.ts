// Prometheus metrics on the debug server: read with a text-format reader after real clients
// pushed and pulled, checked by Debian's promtool and scraped by Debian's prometheus.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { buildImage } from "../testing/images.js";
import { freePort } from "../testing/docker-registry.js";
import { eventually } from "../testing/eventually.js";
import { imageEntry, writeOciLayout } from "../testing/oci-layout.js";
import { sampleValue, scrapeMetrics } from "../testing/prometheus.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startRegistry, type RunningRegistry } from "./index.js";

async function withMetricsRegistry(
  fn: (registry: RunningRegistry, directory: string) => Promise<void>,
  prometheus: Record<string, unknown> = { enabled: true },
): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "berth-metrics-"));
  const registry = await startRegistry({
    config: {
      version: "0.1",
      storage: { filesystem: { rootdirectory: join(directory, "data") } },
      http: { addr: "127.0.0.1:0", debug: { addr: "127.0.0.1:0", prometheus } },
      log: { accesslog: { disabled: true } },
    },
    logLevel: "silent",
  });
  try {
    await fn(registry, directory);
  } finally {
    await registry.close();
    await rm(directory, { recursive: true, force: true });
  }
}

describe("metrics", () => {
  it(
    "counts a skopeo push and pull by route, driver action and bytes, on the debug server only",
    { skip: skipUnlessCommands(["skopeo"], ["skopeo"]) },
    async () => {
      await withMetricsRegistry(async (registry, directory) => {
        assert.equal((await fetch(`${registry.url}/metrics`)).status, 404);
        const url = `${registry.debugUrl}/metrics`;
        const before = await scrapeMetrics(url);
        assert.equal(sampleValue(before, "registry_http_requests_total"), 0);
        assert.equal(before.types.get("process_cpu_user_seconds_total"), "counter", "Node's");
        assert.equal(before.types.get("nodejs_eventloop_lag_seconds"), "gauge");
        assert.equal(before.types.get("registry_http_request_duration_seconds"), "histogram");

        const image = buildImage({ layers: 2, gzip: true, layerSize: 32 * 1024 });
        const source = join(directory, "source");
        await writeOciLayout(source, [imageEntry("image", image)]);
        const remote = `docker://127.0.0.1:${registry.port}/metrics/app:v1`;
        await skopeoCopy(`oci:${source}:image`, remote);
        const pushed = await scrapeMetrics(url);
        const put = { handler: "manifest", method: "PUT", code: "201" };
        assert.equal(sampleValue(pushed, "registry_http_requests_total", put), 1);
        assert.ok(sampleValue(pushed, "registry_http_requests_total", { handler: "blob" }) >= 1);
        const uploadBytes =
          sampleValue(pushed, "registry_http_request_size_bytes_sum", { handler: "blob_upload" }) +
          sampleValue(pushed, "registry_http_request_size_bytes_sum", {
            handler: "blob_upload_chunk",
          });
        const layerBytes = image.layers.reduce((sum, layer) => sum + layer.bytes.length, 0);
        assert.ok(uploadBytes >= layerBytes, `${uploadBytes} bytes received for ${layerBytes}`);
        // Each blob's data is published by a writer: committed in place, or into `blobs/`.
        const publishes = (name: string, outcome?: string) =>
          ["writer.commit", "writer.commitTo", "writer.commitToIfAbsent"]
            .map((action) =>
              sampleValue(pushed, name, {
                driver: "filesystem",
                action,
                ...(outcome === undefined ? {} : { outcome }),
              }),
            )
            .reduce((sum, value) => sum + value, 0);
        assert.ok(publishes("registry_storage_action_seconds_count") >= 2);
        assert.ok(publishes("registry_storage_action_total", "ok") >= 2);
        assert.ok(
          sampleValue(pushed, "registry_storage_action_total", { outcome: "not_found" }) >= 1,
          "a push stats blobs that are not there yet",
        );
        assert.equal(sampleValue(pushed, "registry_http_in_flight_requests"), 0);
        assert.equal(sampleValue(pushed, "registry_storage_uploads_in_progress"), 0);

        await skopeoCopy(remote, `oci:${join(directory, "pulled")}:image`);
        const pulled = await scrapeMetrics(url);
        const get = { handler: "manifest", method: "GET", code: "200" };
        assert.ok(sampleValue(pulled, "registry_http_requests_total", get) >= 1);
        const blobGets = { handler: "blob", method: "GET", code: "200" };
        assert.ok(sampleValue(pulled, "registry_http_requests_total", blobGets) >= 2);
        const sent = sampleValue(pulled, "registry_http_response_size_bytes_sum", {
          handler: "blob",
        });
        assert.ok(sent >= layerBytes, `${sent} blob bytes sent for ${layerBytes}`);
        assert.ok(
          sampleValue(pulled, "registry_http_request_duration_seconds_count", {
            handler: "manifest",
          }) >= 2,
        );
        assert.ok(sampleValue(pulled, "registry_storage_cache_requests_total") > 0);
        assert.ok(sampleValue(pulled, "registry_storage_cache_hits_total", { cache: "blob" }) > 0);
        for (const sample of pulled.samples) {
          assert.doesNotMatch(sample.labels.handler ?? "", /\//, "a route, never a path");
        }
      });
    },
  );

  it(
    "passes promtool's checks and is scraped by Debian's prometheus",
    { skip: skipUnlessCommands(["prometheus", "promtool"], ["prometheus"]) },
    async () => {
      await withMetricsRegistry(async (registry, directory) => {
        await fetch(`${registry.url}/v2/`);
        const text = await (await fetch(`${registry.debugUrl}/metrics`)).text();
        const check = await run("promtool", ["check", "metrics"], text);
        // promtool lints names too; distribution's own names (a gauge called *_total) draw
        // warnings, but the text must parse.
        assert.doesNotMatch(check.output, /error while linting|parse error|text format parsing/i);

        const port = await freePort();
        const target = new URL(registry.debugUrl!).host;
        const config = join(directory, "prometheus.yml");
        await writeFile(
          config,
          `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: berth\n    static_configs:\n      - targets: ["${target}"]\n`,
        );
        const server = spawn(
          "prometheus",
          [
            `--config.file=${config}`,
            `--storage.tsdb.path=${join(directory, "tsdb")}`,
            `--web.listen-address=127.0.0.1:${port}`,
          ],
          { stdio: "ignore" },
        );
        try {
          const query = `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('registry_http_requests_total{handler="base"}')}`;
          await eventually(async () => {
            const answer = await fetch(query).catch(() => undefined);
            if (answer?.status !== 200) return false;
            const body = (await answer.json()) as {
              data: { result: { value: [number, string] }[] };
            };
            return body.data.result.some((sample) => Number(sample.value[1]) >= 1);
          }, 30_000);
          const targets = (await (
            await fetch(`http://127.0.0.1:${port}/api/v1/targets`)
          ).json()) as { data: { activeTargets: { health: string }[] } };
          assert.equal(targets.data.activeTargets[0]?.health, "up");
        } finally {
          server.kill();
          await new Promise((resolve) => server.once("exit", resolve));
        }
      });
    },
  );

  it("serves /debug/health but no metrics on the debug server when Prometheus is off", async () => {
    await withMetricsRegistry(
      async (registry) => {
        assert.equal((await fetch(`${registry.debugUrl}/debug/health`)).status, 200);
        assert.equal((await fetch(`${registry.debugUrl}/metrics`)).status, 404);
      },
      { enabled: false },
    );
  });

  it("serves the metrics at http.debug.prometheus.path", async () => {
    await withMetricsRegistry(
      async (registry) => {
        assert.equal((await fetch(`${registry.debugUrl}/metrics`)).status, 404);
        const families = await scrapeMetrics(`${registry.debugUrl}/internal/prom`);
        assert.equal(families.types.get("registry_http_requests_total"), "counter");
      },
      { enabled: true, path: "/internal/prom" },
    );
  });
});

/** Runs `command` with `input` on stdin; its exit code and stdout and stderr together. */
function run(
  command: string,
  args: string[],
  input: string,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
    child.stdin.end(input);
  });
}
