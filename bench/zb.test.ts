import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RegistryClient } from "./client.js";
import { ContentSource } from "./content.js";
import { startBerth, type RegistryUnderTest } from "./registries.js";
import { Meter, MANIFEST_TYPE, type WorkloadContext } from "./workloads.js";
import {
  planOperations,
  requestCount,
  seededRandom,
  ZB_DEFAULT_IDS,
  ZB_SPECS,
  zbPercentile,
  zbWorkload,
  type ZbOperation,
  type ZbSpec,
} from "./zb.js";

const MiB = 1024 * 1024;

function spec(id: string): ZbSpec {
  const found = ZB_SPECS.find((candidate) => candidate.id === id);
  assert.ok(found, `no workload ${id}`);
  return found;
}

/** How many operations of each kind: "pull 1048576" → count. */
function tally(operations: ZbOperation[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { push, bytes } of operations) {
    const key = `${push ? "push" : "pull"} ${bytes}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describe("zb-style workload mixes", () => {
  it("defines zb's tests at concurrency 10 and 50, with a default subset", () => {
    for (const concurrency of [10, 50]) {
      for (const kind of ["pull", "push-mono", "push-chunk", "mix"]) {
        for (const size of ["1m", "10m", "100m"]) spec(`zb-${kind}-${size}-c${concurrency}`);
      }
      for (const kind of ["pull", "push-mono", "push-chunk"])
        spec(`zb-${kind}-mixed-c${concurrency}`);
    }
    assert.equal(new Set(ZB_SPECS.map((candidate) => candidate.id)).size, ZB_SPECS.length);
    for (const candidate of ZB_SPECS) {
      const total = candidate.sizes.reduce((sum, size) => sum + size.share, 0);
      assert.ok(Math.abs(total - 1) < 1e-9, `${candidate.id}: shares add up to ${total}`);
    }
    assert.ok(ZB_DEFAULT_IDS.length > 0 && ZB_DEFAULT_IDS.length < ZB_SPECS.length);
  });

  it("pulls 20% 1 MiB, 70% 10 MiB, 10% 100 MiB in the mixed pull", () => {
    const plan = planOperations(spec("zb-pull-mixed-c10"), 100, "seed");
    assert.deepEqual(
      tally(plan),
      new Map([
        [`pull ${MiB}`, 20],
        [`pull ${10 * MiB}`, 70],
        [`pull ${100 * MiB}`, 10],
      ]),
    );
  });

  it("pulls 75% and pushes 25% in the mix, and rounds small counts to add up", () => {
    const mix = spec("zb-mix-10m-c50");
    assert.deepEqual(
      tally(planOperations(mix, 200, "seed")),
      new Map([
        [`pull ${10 * MiB}`, 150],
        [`push ${10 * MiB}`, 50],
      ]),
    );
    // 7 × 0.75 = 5.25 pulls and 1.75 pushes: the larger remainder gets the seventh.
    assert.deepEqual(
      tally(planOperations(mix, 7, "seed")),
      new Map([
        [`pull ${10 * MiB}`, 5],
        [`push ${10 * MiB}`, 2],
      ]),
    );
    // 15 mixed pulls: 3, 10.5 and 1.5; the tie goes to the first listed.
    const small = tally(planOperations(spec("zb-pull-mixed-c10"), 15, "seed"));
    assert.deepEqual(
      [...small.values()].reduce((sum, n) => sum + n, 0),
      15,
    );
    assert.equal(small.get(`pull ${MiB}`), 3);
    assert.equal(small.get(`pull ${10 * MiB}`), 11);
    assert.equal(small.get(`pull ${100 * MiB}`), 1);
  });

  it("orders a plan by its seed: the same seed the same order, another seed another", () => {
    const mix = spec("zb-mix-1m-c10");
    const order = (seed: string) =>
      planOperations(mix, 64, seed)
        .map((operation) => (operation.push ? "P" : "p"))
        .join("");
    assert.equal(order("run-a/0"), order("run-a/0"));
    assert.notEqual(order("run-a/0"), order("run-b/0"));
    assert.notEqual(order("run-a/0"), "p".repeat(48) + "P".repeat(16), "the plan is shuffled");
    const random = seededRandom("x");
    for (let i = 0; i < 1000; i++) {
      const value = random();
      assert.ok(value >= 0 && value < 1, `${value} out of [0, 1)`);
    }
  });

  it("reads percentiles as zb does: index ⌊n·p/100⌋ of the sorted latencies", () => {
    const hundred = Array.from({ length: 100 }, (_, index) => index + 1);
    assert.equal(zbPercentile(hundred, 50), 51);
    assert.equal(zbPercentile(hundred, 90), 91);
    assert.equal(zbPercentile(hundred, 99), 100);
    assert.equal(zbPercentile([3, 7, 9], 50), 7);
    assert.equal(zbPercentile([3, 7, 9], 99), 9);
    assert.equal(zbPercentile([5], 90), 5);
    assert.ok(Number.isNaN(zbPercentile([], 50)));
  });

  it("runs at least one request per worker and about 100 MiB of layers by default", () => {
    assert.equal(requestCount(spec("zb-pull-1m-c50")), 100);
    assert.equal(requestCount(spec("zb-pull-mixed-c10")), 10);
    assert.equal(requestCount(spec("zb-pull-100m-c10")), 10);
    assert.equal(requestCount(spec("zb-pull-100m-c50")), 50);
    assert.equal(requestCount(spec("zb-pull-1m-c10"), { requests: 4 }), 4);
  });
});

describe("zb-style workload against a real Berth", () => {
  let berth: RegistryUnderTest;
  let client: RegistryClient;

  before(async () => {
    berth = await startBerth();
    client = new RegistryClient(berth.url);
  });

  after(async () => {
    client?.close();
    await berth?.stop();
  });

  it("pulls and pushes images two at a time, and reports throughput and percentiles", async () => {
    // The 75/25 mix at 1 MiB, two in flight, eight images: six pulls, two pushes.
    const mix: ZbSpec = { ...spec("zb-mix-1m-c10"), id: "zb-smoke", concurrency: 2 };
    const workload = zbWorkload(mix, { requests: 8 });
    const context: WorkloadContext = {
      registry: berth,
      client,
      content: new ContentSource(Buffer.from("zb smoke")),
      loadSeconds: 1,
      state: new Map(),
    };
    await workload.prepare?.(context);
    const figures = await workload.run(context, new Meter(berth), 0);
    assert.equal(figures["zb-smoke-requests"], 8);
    // Every image has a 1 MiB layer: MB/s over images/s is 1.048576 MB if no byte went uncounted.
    const perImage = (figures["zb-smoke"] as number) / (figures["zb-smoke-images-per-s"] as number);
    assert.ok(Math.abs(perImage - MiB / 1e6) < 1e-9, `${perImage} MB per image`);
    const [p50, p90, p99] = ["p50", "p90", "p99"].map(
      (p) => figures[`zb-smoke-${p}`] as number,
    ) as [number, number, number];
    assert.ok(p50 > 0 && p50 <= p90 && p90 <= p99, `${p50} ${p90} ${p99}`);
    // The pushes landed where the plan put them: new repositories with a manifest each.
    const pushes = planOperations(mix, 8, `${context.content.seed.toString("hex")}/zb-smoke/0`)
      .map((operation, index) => (operation.push ? index : -1))
      .filter((index) => index >= 0);
    assert.equal(pushes.length, 2);
    for (const index of pushes) {
      const got = await client.getManifest(`zb/zb-smoke/r0-${index}`, "latest", MANIFEST_TYPE);
      const manifest = JSON.parse(got.bytes.toString("utf8")) as { layers: { size: number }[] };
      assert.equal(manifest.layers[0]?.size, MiB);
    }
  });
});
