// The background garbage collector's Prometheus series on the debug server: a collection that
// removed an orphan blob is counted with what it removed.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { eventually } from "../testing/eventually.js";
import { sha256 } from "../testing/images.js";
import { sampleValue, scrapeMetrics } from "../testing/prometheus.js";
import { startRegistry } from "./index.js";

describe("garbage collection metrics", () => {
  it("counts runs, deleted blobs and freed bytes", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-gc-metrics-"));
    const registry = await startRegistry({
      config: {
        version: "0.1",
        storage: {
          filesystem: { rootdirectory: join(directory, "data") },
          maintenance: {
            uploadpurging: { enabled: false },
            gc: { enabled: true, interval: "1s", delay: "1s" },
          },
        },
        http: {
          addr: "127.0.0.1:0",
          debug: { addr: "127.0.0.1:0", prometheus: { enabled: true } },
        },
        log: { accesslog: { disabled: true } },
      },
      logLevel: "silent",
    });
    try {
      const url = `${registry.debugUrl}/metrics`;
      const before = await scrapeMetrics(url);
      assert.equal(before.types.get("registry_storage_gc_runs_total"), "counter");
      assert.equal(sampleValue(before, "registry_storage_gc_blobs_deleted_total"), 0);
      // A blob no manifest references: garbage once older than the delay.
      const orphan = randomBytes(3000);
      const pushed = await fetch(
        `${registry.url}/v2/metrics/gc/blobs/uploads/?digest=${sha256(orphan)}`,
        { method: "POST", body: orphan },
      );
      assert.equal(pushed.status, 201);
      let scrape = before;
      await eventually(async () => {
        scrape = await scrapeMetrics(url);
        return sampleValue(scrape, "registry_storage_gc_blobs_deleted_total") >= 1;
      }, 60_000);
      assert.ok(sampleValue(scrape, "registry_storage_gc_runs_total", { outcome: "ok" }) >= 1);
      assert.equal(sampleValue(scrape, "registry_storage_gc_runs_total", { outcome: "error" }), 0);
      assert.equal(sampleValue(scrape, "registry_storage_gc_freed_bytes_total"), 3000);
      assert.equal(sampleValue(scrape, "registry_storage_gc_manifests_deleted_total"), 0);
      assert.ok(sampleValue(scrape, "registry_storage_gc_last_success_timestamp_seconds") > 0);
      const head = await fetch(`${registry.url}/v2/metrics/gc/blobs/${sha256(orphan)}`, {
        method: "HEAD",
      });
      assert.equal(head.status, 404);
    } finally {
      await registry.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
