// Immutable tags (storage.tags.immutable) and storage quotas (storage.quotas) on a running registry,
// with skopeo pushing: tag moves, deletes and concurrent pushes of one immutable tag; concurrent
// pushes into one quota's namespace, a blob larger than the quota, `berth usage`, the gauges, and
// a quota freed by deletion plus garbage collection.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../config/index.js";
import { buildImage, sha256, type TestImage } from "../testing/images.js";
import { imageEntry, writeOciLayout } from "../testing/oci-layout.js";
import { sampleValue, scrapeMetrics } from "../testing/prometheus.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { collectOnce, startRegistry, type RunningRegistry } from "./index.js";

const execFileAsync = promisify(execFile);
const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
const LAYER = 100 * 1024;

const configYaml = (root: string): string => `version: 0.1
storage:
  filesystem:
    rootdirectory: ${root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
    gc:
      delay: 0s
  tags:
    immutable: ["^v\\\\d+\\\\.\\\\d+\\\\.\\\\d+$"]
  quotas:
    - repositories: ["team-q/**"]
      bytes: 350KiB
http:
  addr: 127.0.0.1:0
  debug:
    addr: 127.0.0.1:0
    prometheus:
      enabled: true
`;

describe("immutable tags and quotas", { skip: skipUnlessCommands(["skopeo"], ["skopeo"]) }, () => {
  let directory: string;
  let configFile: string;
  let berth: RunningRegistry;
  let host: string;
  let layouts = 0;

  /** Writes `image` to a fresh OCI layout and returns skopeo's source reference for it. */
  async function layout(image: TestImage): Promise<string> {
    const path = join(directory, `layout-${layouts++}`);
    await writeOciLayout(path, [imageEntry("image", image)]);
    return `oci:${path}:image`;
  }

  /** skopeo pushes `image` to `reference` (`repo:tag`); resolves to its stderr on refusal. */
  async function push(image: TestImage, reference: string): Promise<string | undefined> {
    const source = await layout(image);
    try {
      await skopeoCopy(source, `docker://${host}/${reference}`);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  async function errorOf(response: Response): Promise<{ code: string; message: string }> {
    const body = (await response.json()) as { errors: { code: string; message: string }[] };
    return body.errors[0]!;
  }

  /** PUTs `image`'s manifest as `repository:tag`, asserts 403 DENIED and returns the error. */
  async function refusedManifest(repository: string, tag: string, image: TestImage) {
    const put = await fetch(`${berth.url}/v2/${repository}/manifests/${tag}`, {
      method: "PUT",
      headers: { "Content-Type": image.manifest.mediaType },
      body: image.manifest.bytes,
    });
    assert.equal(put.status, 403);
    const error = await errorOf(put);
    assert.equal(error.code, "DENIED");
    return error;
  }

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "berth-policies-"));
    configFile = join(directory, "config.yml");
    await writeFile(configFile, configYaml(join(directory, "root")));
    berth = await startRegistry({ config: await loadConfig(configFile, {}), logLevel: "silent" });
    host = new URL(berth.url).host;
  });

  after(async () => {
    await berth?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it("an immutable tag is never moved or deleted; the same digest again is accepted", async () => {
    const first = buildImage({ layers: 1 });
    const second = buildImage({ layers: 1 });
    assert.equal(await push(first, "lib/app:v1.0.0"), undefined);
    assert.equal(await push(first, "lib/app:v1.0.0"), undefined, "the same image again");
    const refused = await push(second, "lib/app:v1.0.0");
    assert.match(refused ?? "", /denied|DENIED/);
    // Over HTTP: the error code, the status and a message naming the rule.
    const error = await refusedManifest("lib/app", "v1.0.0", second);
    assert.match(error.message, /immutable .*\^v\\\\d\+/);
    for (const reference of ["v1.0.0", first.manifest.digest]) {
      const deleted = await fetch(`${berth.url}/v2/lib/app/manifests/${reference}`, {
        method: "DELETE",
      });
      assert.equal(deleted.status, 403, reference);
      assert.equal((await errorOf(deleted)).code, "DENIED");
    }
    assert.equal(
      await berth.storage.repository("lib/app").tags.resolve("v1.0.0"),
      first.manifest.digest,
    );
    // A tag the rule does not match moves and goes as usual.
    assert.equal(await push(first, "lib/app:latest"), undefined);
    assert.equal(await push(second, "lib/app:latest"), undefined);
    assert.equal(
      await berth.storage.repository("lib/app").tags.resolve("latest"),
      second.manifest.digest,
    );
    const untag = await fetch(`${berth.url}/v2/lib/app/manifests/latest`, { method: "DELETE" });
    assert.equal(untag.status, 202);
  });

  it("of concurrent pushes of different images to one immutable tag, exactly one wins", async () => {
    const images = Array.from({ length: 5 }, () => buildImage({ layers: 1 }));
    const results = await Promise.all(images.map((image) => push(image, "lib/race:v2.0.0")));
    const winners = images.filter((_, i) => results[i] === undefined);
    assert.equal(winners.length, 1, results.join("\n"));
    for (const refusal of results.filter((result) => result !== undefined)) {
      assert.match(refusal, /denied|DENIED/);
    }
    const tag = await berth.storage.repository("lib/race").tags.resolve("v2.0.0");
    assert.equal(tag, winners[0]!.manifest.digest);
  });

  it("concurrent pushes into one namespace never take it over its quota", async () => {
    // Eight images of about 101 KiB into a 350 KiB quota: three fit.
    const images = Array.from({ length: 8 }, () => buildImage({ layers: 1, layerSize: LAYER }));
    const results = await Promise.all(
      images.map((image, i) => push(image, `team-q/service-${i % 3}:build-${i}`)),
    );
    const refused = results.filter((result) => result !== undefined);
    assert.equal(images.length - refused.length, 3, results.join("\n"));
    for (const refusal of refused) assert.match(refusal, /denied|DENIED/);
    const [usage] = await berth.registry.quotaUsage();
    assert.ok(usage!.bytes <= 350 * 1024, `${usage!.bytes} bytes stored`);
    // The refusal over HTTP names usage and limit.
    const extra = buildImage({ layers: 1, layerSize: LAYER });
    const source = await layout(extra);
    await skopeoCopy(source, `docker://${host}/team-q/service-0:probe`).catch(() => undefined);
    const error = await refusedManifest("team-q/service-0", "probe", extra);
    assert.match(
      error.message,
      /quota exceeded for team-q\/\*\*: .* used \+ .* new > limit 350 KiB/,
    );
    // Outside the namespace nothing is limited.
    assert.equal(await push(extra, "elsewhere/app:probe"), undefined);
    // `berth usage` and the gauges report it.
    const { stdout } = await execFileAsync(process.execPath, [main, "usage", configFile], {
      env: { PATH: process.env.PATH ?? "" },
    });
    assert.match(stdout, new RegExp(`team-q/\\*\\*: .*\\(${usage!.bytes} bytes\\) of 350 KiB`));
    const scrape = await scrapeMetrics(`${berth.debugUrl}/metrics`);
    const labels = { repositories: "team-q/**" };
    assert.equal(sampleValue(scrape, "registry_storage_quota_used_bytes", labels), usage!.bytes);
    assert.equal(sampleValue(scrape, "registry_storage_quota_limit_bytes", labels), 350 * 1024);
  });

  it("refuses a single blob larger than the quota at upload completion", async () => {
    const blob = Buffer.alloc(400 * 1024, 7);
    const digest = sha256(blob);
    const started = await fetch(`${berth.url}/v2/team-q/big/blobs/uploads/`, { method: "POST" });
    const location = started.headers.get("location")!;
    const url = new URL(location, berth.url);
    url.searchParams.set("digest", digest);
    const finished = await fetch(url, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob,
    });
    assert.equal(finished.status, 403);
    const error = await errorOf(finished);
    assert.equal(error.code, "DENIED");
    assert.match(error.message, /400 KiB .*limit of 350 KiB/);
    const head = await fetch(`${berth.url}/v2/team-q/big/blobs/${digest}`, { method: "HEAD" });
    assert.equal(head.status, 404);
  });

  it("deleting an image and collecting frees its bytes for the next push", async () => {
    let name = "";
    let tag: string | undefined;
    for (const candidate of ["team-q/service-0", "team-q/service-1", "team-q/service-2"]) {
      [tag] = await berth.storage.repository(candidate).tags.list();
      name = candidate;
      if (tag !== undefined) break;
    }
    const digest = await berth.storage.repository(name).tags.resolve(tag!);
    const [before] = await berth.registry.quotaUsage();
    const next = buildImage({ layers: 1, layerSize: LAYER });
    assert.match((await push(next, "team-q/service-3:next")) ?? "", /denied|DENIED/);
    const deleted = await fetch(`${berth.url}/v2/${name}/manifests/${digest}`, {
      method: "DELETE",
    });
    assert.equal(deleted.status, 202);
    await collectOnce(berth.registry, { delayMs: 0 });
    const [after] = await berth.registry.quotaUsage();
    assert.ok(after!.bytes < before!.bytes - LAYER, `${before!.bytes} → ${after!.bytes}`);
    assert.equal(await push(next, "team-q/service-3:next"), undefined);
  });
});
