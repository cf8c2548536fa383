// `npm run fuzz`: the long version of the fuzz test (src/server/fuzz.test.ts). Sends N seeded
// malformed requests (default 100,000) to Berth in a child process on a filesystem root, then the
// same cases to distribution 2.8.2 (Debian's docker-registry) on a root of its own, and reports
// per registry: answers by status, 5xx answers, error answers outside the OCI envelope, requests
// without an answer, and for both whether anything was written beside the root or off the storage
// layout; for Berth also /debug/health and its memory after a full GC before and after. Exits 1
// when Berth broke a rule (distribution is only compared). Progress on stderr, summary on stdout.

import { Command, InvalidArgumentError } from "commander";
import { randomInt } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDockerRegistry } from "../src/testing/docker-registry.js";
import { fuzzSeed } from "../src/testing/fuzz-cases.js";
import { escapes, prepareFuzzDirectory, startFuzzTarget } from "../src/testing/fuzz-target.js";
import { describeFindings, pushFuzzSeed, runFuzz, type FuzzReport } from "../src/testing/fuzz.js";
import { hasCommand } from "../src/testing/tools.js";

interface Options {
  requests: number;
  seed?: number;
  concurrency: number;
  distribution: boolean;
  json?: string;
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError(`not a positive integer: ${value}`);
  return parsed;
}

const options = new Command()
  .name("npm run fuzz --")
  .description("malformed requests against Berth and distribution 2.8.2")
  .option("--requests <n>", "cases to send to each registry", positiveInteger, 100_000)
  .option("--seed <n>", "the generator's seed (default: random, printed)", positiveInteger)
  .option("--concurrency <n>", "cases in flight at once", positiveInteger, 8)
  .option("--no-distribution", "fuzz Berth alone")
  .option("--json <file>", "also write both reports as JSON to this file")
  .parse()
  .opts<Options>();

const seed = options.seed ?? randomInt(2 ** 31);
const registrySeed = fuzzSeed();
const started = Date.now();
const MiB = 1024 * 1024;

function progress(message: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)}s] ${message}\n`);
}

interface Result {
  registry: string;
  report: FuzzReport;
  escapes: string[];
  healthy: boolean;
  memory?: { heapBefore: number; heapAfter: number; rssBefore: number; rssAfter: number };
  seconds: number;
}

async function fuzz(url: string, name: string): Promise<FuzzReport> {
  await pushFuzzSeed(url, registrySeed);
  return runFuzz({
    url,
    seed,
    count: options.requests,
    concurrency: options.concurrency,
    registrySeed,
    progressEvery: 5000,
    onProgress: (done, report) =>
      progress(`${name}: ${done} cases, 5xx ${report.serverErrors.length}, envelope ${report.envelopeViolations.length}, unanswered ${report.unanswered.length}`), // prettier-ignore
  });
}

async function fuzzBerth(): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), "berth-fuzz-"));
  await prepareFuzzDirectory(dir);
  const begun = Date.now();
  const target = await startFuzzTarget(dir);
  try {
    await pushFuzzSeed(target.url, registrySeed).catch(() => undefined);
    const before = await target.memory();
    const report = await fuzz(target.url, "berth");
    const alive = target.exited() === undefined;
    const healthy =
      alive &&
      (await fetch(`${target.url}/v2/`)).status === 200 &&
      (await fetch(`${target.debugUrl}/debug/health`)).status === 200;
    const after = alive ? await target.memory() : before;
    await target.stop();
    if (!alive) progress(`Berth exited during the run: ${target.output()}`);
    return {
      registry: "berth",
      report,
      escapes: await escapes(dir),
      healthy,
      memory: { heapBefore: before.heapUsed, heapAfter: after.heapUsed, rssBefore: before.rss, rssAfter: after.rss }, // prettier-ignore
      seconds: (Date.now() - begun) / 1000,
    };
  } finally {
    await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function fuzzDistribution(): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), "berth-fuzz-distribution-"));
  const root = await prepareFuzzDirectory(dir);
  const begun = Date.now();
  const registry = await startDockerRegistry(root);
  try {
    const report = await fuzz(registry.url, "distribution");
    const healthy = (await fetch(`${registry.url}/v2/`)).status === 200;
    await registry.stop();
    return { registry: "distribution 2.8.2", report, escapes: await escapes(dir), healthy, seconds: (Date.now() - begun) / 1000 }; // prettier-ignore
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

function summary(result: Result): string {
  const { report } = result;
  const lines = [
    `${result.registry}: ${report.cases} cases, ${report.requests} requests in ${result.seconds.toFixed(0)} s`,
    `  5xx answers:                        ${report.serverErrors.length}`,
    `  error answers outside the envelope: ${report.envelopeViolations.length}`,
    `  requests without an answer:         ${report.unanswered.length}`,
    `  raw cases answered by a close:      ${Object.values(report.closed).reduce((a, b) => a + b, 0)}`,
    `  written beside the root / off the layout: ${result.escapes.length}`,
    `  healthy after (/v2/${result.memory ? ", /debug/health" : ""}): ${result.healthy}`,
    `  statuses: ${JSON.stringify(report.statuses)}`,
  ]; // prettier-ignore
  if (result.memory) {
    const m = result.memory;
    lines.push(`  after a full GC: heap ${(m.heapBefore / MiB).toFixed(1)} -> ${(m.heapAfter / MiB).toFixed(1)} MiB, rss ${(m.rssBefore / MiB).toFixed(1)} -> ${(m.rssAfter / MiB).toFixed(1)} MiB`); // prettier-ignore
  }
  const findings = report.serverErrors.length + report.envelopeViolations.length + report.unanswered.length; // prettier-ignore
  if (findings > 0) lines.push(describeFindings(report, 5).replace(/^/gm, "  "));
  for (const escape of result.escapes.slice(0, 5)) lines.push(`  ${escape}`);
  return lines.join("\n");
}

progress(`seed ${seed}, ${options.requests} cases per registry`);
const results = [await fuzzBerth()];
if (options.distribution) {
  if (hasCommand("docker-registry")) results.push(await fuzzDistribution());
  else
    progress("docker-registry not found (apt-get install docker-registry): distribution skipped");
}
process.stdout.write(`seed ${seed}\n${results.map(summary).join("\n\n")}\n`);
if (options.json) await writeFile(options.json, JSON.stringify({ seed, results }, null, 2));
const berth = results[0]!;
const broken =
  berth.report.serverErrors.length +
    berth.report.envelopeViolations.length +
    berth.report.unanswered.length +
    berth.escapes.length >
    0 || !berth.healthy;
process.exit(broken ? 1 : 0);
