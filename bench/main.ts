// `npm run bench`: Berth against distribution (Debian's docker-registry) in one run, through the
// /v2/ API only, each registry a child process on its own throwaway filesystem root. Repetitions
// alternate between the registries (A B, B A, A B) so drift on a shared machine hits both alike,
// and every write repetition starts from a settled disk (see settleDisk). Table on stdout, JSON
// lines with --json, progress on stderr. `--driver-ipc` measures issue 17's cost instead: Berth with
// its filesystem driver out of process (gRPC, `berth driver-server`) against Berth with it in process.
// `--driver rados` measures issue 16's: Berth on the rados driver against Berth on s3 through the
// RADOS Gateway, both on one throwaway Ceph cluster (bluestore on a sparse file in /tmp).
// `--driver s3` measures issue 21's s3 read path: Berth's s3 driver against distribution's on one
// RGW, then their backend requests for an image (bench/s3.ts).
// The zb- workloads (bench/zb.ts) are zot's zb tests at 10 and 50 images in flight; a default run
// includes some of them, --only zb- all.

import { Command, InvalidArgumentError } from "commander";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { RegistryClient } from "./client.js";
import { ContentSource } from "./content.js";
import { machine } from "./machine.js";
import {
  backendCpu,
  clientSaturation,
  compare,
  formatTable,
  IPC_GOALS,
  RADOS_GOALS,
  S3_GOALS,
  type RegistryResults,
  type WorkloadResult,
} from "./report.js";
import {
  connectRegistry,
  onPath,
  startBerth,
  startDistribution,
  type RegistryUnderTest,
} from "./registries.js";
import { Meter, WORKLOADS, type Workload, type WorkloadContext } from "./workloads.js";
import type { CephCluster } from "../src/testing/ceph.js";
import {
  countBackendRequests,
  formatRequestCounts,
  requestCountLines,
  registriesOnCeph,
  s3Parameters,
  S3_WORKLOADS,
  startOnRgw,
  type BerthStart,
  type RequestCount,
} from "./s3.js";
import { formatTimeline, MemoryTimeline, type MemoryOverRun } from "./timeline.js";
import { ZB_DEFAULT_IDS, ZB_SPECS, zbWorkloads } from "./zb.js";

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;

interface Options {
  url?: string;
  pid?: number;
  json?: string;
  repetitions: number;
  loadSeconds: number;
  only?: string[];
  distribution: boolean;
  cpuProf?: string;
  berthCli?: string;
  berthEnv: Record<string, string>;
  seed?: string;
  driverIpc: boolean;
  driver?: "rados" | "s3";
  zbRequests?: number;
}

/** The workloads of --driver-ipc unless --only names others: issue 17's three. */
const IPC_WORKLOADS = ["push-1g", "pull-1g", "push-small"];

const started = Date.now();

function progress(message: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError(`not a positive integer: ${value}`);
  return parsed;
}

function parseOptions(): Options {
  const workloadIds = [...WORKLOADS, ...ZB_SPECS].map((workload) => workload.id);
  const program = new Command()
    .name("npm run bench --")
    .description(
      "Berth against distribution (docker-registry) side by side, or any registry with --url",
    )
    .option("--url <url>", "bench this running registry instead of starting Berth and distribution")
    .option(
      "--pid <pid>",
      "with --url: the registry's process id, for its memory and CPU figures",
      positiveInteger,
    )
    .option("--json <file>", "also write the results as JSON lines to this file")
    .option("--repetitions <n>", "repetitions per workload (the median counts)", positiveInteger, 3)
    .option("--load-seconds <s>", "seconds of each small-request load run", positiveInteger, 5)
    .option(
      "--only <ids>",
      `run only these workloads (comma-separated: ${WORKLOADS.map((workload) => workload.id).join(", ")}; ` +
        "zot zb's tests as zb-<pull|push-mono|push-chunk|mix>-<1m|10m|100m>-c<10|50>, " +
        "zb-<pull|push-mono|push-chunk>-mixed-c<10|50>; an id ending in - selects all it begins, zb- every zb one; " +
        `a default run has ${ZB_DEFAULT_IDS.join(", ")})`,
      (value) =>
        value.split(",").flatMap((id) => {
          const ids = workloadIds.filter(
            (known) => known === id || (id.endsWith("-") && known.startsWith(id)),
          );
          if (ids.length === 0) throw new InvalidArgumentError(`unknown workload ${id}`);
          return ids;
        }),
    )
    .option(
      "--zb-requests <n>",
      "images pulled or pushed per timed run of each zb- workload, as zb's -n (default: enough " +
        "for 100 MiB of layers, at least the concurrency)",
      positiveInteger,
    )
    .option("--no-distribution", "bench Berth alone")
    .option("--cpu-prof <dir>", "run Berth under node --cpu-prof, profiles into this directory")
    .option("--berth-cli <file>", "run this build of Berth's CLI (default: the checkout's)")
    .option(
      "--berth-env <name=value>",
      "environment variable for Berth (repeatable)",
      (value: string, previous: Record<string, string>) => {
        const equals = value.indexOf("=");
        if (equals < 1) throw new InvalidArgumentError(`not name=value: ${value}`);
        return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
      },
      {},
    )
    .option("--seed <hex>", "content seed (default: random per run)")
    .option(
      "--driver-ipc",
      "Berth with its filesystem driver out of process (berth driver-server over gRPC) against " +
        `Berth with it in process; default workloads ${IPC_WORKLOADS.join(", ")}`,
      false,
    )
    .option(
      "--driver <name>",
      "rados: Berth on the rados driver against Berth on s3 through the RADOS Gateway, on one " +
        `throwaway Ceph cluster; default workloads ${IPC_WORKLOADS.join(", ")}. s3: Berth's s3 ` +
        "driver against distribution's on one RGW, redirects off, then their backend requests " +
        `for an image (and Berth on azure's); default workloads ${S3_WORKLOADS.join(", ")} and the ` +
        "default zb- ones",
      (value: string) => {
        if (value !== "rados" && value !== "s3")
          throw new InvalidArgumentError(`only rados and s3 are benched: ${value}`);
        return value;
      },
    )
    .parse();
  return program.opts<Options>();
}

async function startRegistries(options: Options): Promise<{
  registries: RegistryUnderTest[];
  note?: string;
  cleanup?: () => Promise<void>;
  ceph?: CephCluster;
}> {
  if (options.url !== undefined)
    return { registries: [await connectRegistry(options.url, options.pid)] };
  const berth = { cli: options.berthCli, cpuProfileDir: options.cpuProf, env: options.berthEnv };
  if (options.driver === "rados") return startOnCeph(berth);
  if (options.driver === "s3") return startOnRgw(berth, progress);
  if (options.driverIpc) {
    const outOfProcess = await startBerth({ ...berth, outOfProcess: true });
    try {
      return { registries: [outOfProcess, await startBerth(berth)] };
    } catch (error) {
      await outOfProcess.stop();
      throw error;
    }
  }
  const registries = [await startBerth(berth)];
  if (!options.distribution) return { registries, note: "distribution not run: --no-distribution" };
  if (!onPath("docker-registry")) {
    return {
      registries,
      note: "distribution not run: docker-registry is not installed (apt package docker-registry); Berth alone, no ratios",
    };
  }
  try {
    registries.push(await startDistribution());
  } catch (error) {
    await registries[0]?.stop();
    throw error;
  }
  return { registries };
}

/** Berth on rados and Berth on s3 through RGW, on one throwaway Ceph cluster. */
async function startOnCeph(berth: BerthStart) {
  const { ceph, registries } = await registriesOnCeph(
    progress,
    async (cluster) => {
      await cluster.createPool("berth-bench");
      await cluster.createBucket("berth-bench");
    },
    [
      (cluster) =>
        startBerth({
          ...berth,
          name: "Berth rados",
          storage: { rados: { poolname: "berth-bench", conffile: cluster.confFile } },
        }),
      (cluster) =>
        startBerth({
          ...berth,
          name: "Berth s3 RGW",
          storage: { s3: s3Parameters(cluster, "berth-bench"), redirect: { disable: true } },
        }),
    ],
  );
  return {
    registries,
    note: "one Ceph cluster (1 monitor, 1 OSD on bluestore, radosgw) serves both",
    cleanup: () => ceph.stop(),
  };
}

/**
 * Before a write repetition: `sync`, so one registry's dirty pages are not flushed on the other's
 * clock, then drop the clean page cache (as root). On this VM a page the guest has not used before
 * is expensive to get (1 GiB `dd ... conv=fsync` goes from 1.6 GB/s to 350 MB/s, with five times
 * the system time, once the page cache has grown into fresh memory); without the drop, whichever
 * registry writes later in the run pays for that. Where the drop is refused, the run goes on.
 */
let dropRefusedReported = false;

async function settleDisk(): Promise<void> {
  await execFileAsync("sync");
  try {
    await writeFile("/proc/sys/vm/drop_caches", "1");
  } catch (error) {
    if (dropRefusedReported) return;
    dropRefusedReported = true;
    progress(`page cache not dropped (${(error as Error).message}): later writes may be slower`);
  }
}

async function idleRssMiB(registry: RegistryUnderTest): Promise<number | undefined> {
  return registry.process === undefined ? undefined : (await registry.process.memory()).rss / MiB;
}

async function runWorkload(
  workload: Workload,
  contexts: WorkloadContext[],
  results: RegistryResults[],
  repetitions: number,
): Promise<void> {
  const resultOf = (index: number): WorkloadResult => {
    const registryResults = results[index] as RegistryResults;
    let result = registryResults.workloads.get(workload.id);
    if (result === undefined) {
      result = {
        figures: new Map(),
        serverCpuSeconds: [],
        clientCpuSeconds: [],
        backendCpuSeconds: [],
        timedSeconds: [],
        windowsMicros: [],
      };
      registryResults.workloads.set(workload.id, result);
    }
    return result;
  };
  for (const [index, context] of contexts.entries()) {
    try {
      await workload.prepare?.(context);
    } catch (error) {
      resultOf(index).error = (error as Error).message;
      progress(
        `${workload.id} ${context.registry.name}: setup failed: ${(error as Error).message}`,
      );
    }
  }
  for (let repetition = 0; repetition < repetitions; repetition++) {
    const order = contexts.map((_, index) => index);
    if (repetition % 2 === 1) order.reverse();
    for (const index of order) {
      const context = contexts[index] as WorkloadContext;
      const result = resultOf(index);
      if (result.error !== undefined) continue;
      if (workload.writes) await settleDisk();
      const meter = new Meter(context.registry);
      try {
        const figures = await workload.run(context, meter, repetition);
        for (const [id, value] of Object.entries(figures)) {
          result.figures.set(id, [...(result.figures.get(id) ?? []), value]);
        }
        result.serverCpuSeconds.push(
          context.registry.process === undefined ? Number.NaN : meter.serverCpuSeconds,
        );
        result.clientCpuSeconds.push(meter.clientCpuSeconds);
        result.backendCpuSeconds.push(meter.backendCpuSeconds);
        result.timedSeconds.push(meter.seconds);
        result.windowsMicros.push(...meter.windowsMicros);
        const shown = Object.entries(figures)
          .map(([id, value]) => `${id} ${value.toFixed(1)}`)
          .join(", ");
        const clientShare = ((meter.clientCpuSeconds / meter.seconds) * 100).toFixed(0);
        const backendCpu = Number.isNaN(meter.backendCpuSeconds)
          ? ""
          : `, backend CPU ${meter.backendCpuSeconds.toFixed(2)} s`;
        progress(
          `${workload.id} ${context.registry.name} ${repetition + 1}/${repetitions}: ${shown}` +
            ` (server CPU ${meter.serverCpuSeconds.toFixed(2)} s${backendCpu}, client CPU ${clientShare}% of a core)`,
        );
      } catch (error) {
        result.error = (error as Error).message;
        progress(`${workload.id} ${context.registry.name}: failed: ${(error as Error).message}`);
      }
    }
  }
}

function jsonLines(
  options: Options,
  seed: Buffer,
  note: string | undefined,
  results: RegistryResults[],
  rows: ReturnType<typeof compare>,
  zbMemory: (MemoryOverRun | undefined)[],
  requestCounts: RequestCount[] | undefined,
): string {
  const lines: unknown[] = [
    {
      type: "run",
      startedAt: new Date(started).toISOString(),
      seed: seed.toString("hex"),
      machine: machine(),
      repetitions: options.repetitions,
      loadSeconds: options.loadSeconds,
      registries: results.map((result) => result.name),
      note,
    },
  ];
  for (const [index, result] of results.entries()) {
    lines.push({ type: "idle", registry: result.name, idleRssMiB: result.idleRssMiB });
    if (result.memory !== undefined)
      lines.push({ type: "memory", registry: result.name, ...result.memory });
    const zb = zbMemory[index];
    if (zb !== undefined) lines.push({ type: "memory", over: "zb-", registry: result.name, ...zb });
    for (const [workload, figures] of result.workloads) {
      lines.push({
        type: "result",
        registry: result.name,
        workload,
        figures: Object.fromEntries(figures.figures),
        serverCpuSeconds: figures.serverCpuSeconds,
        clientCpuSeconds: figures.clientCpuSeconds,
        backendCpuSeconds: figures.backendCpuSeconds.some(Number.isNaN)
          ? undefined
          : figures.backendCpuSeconds,
        timedSeconds: figures.timedSeconds,
        windowsMicros: figures.windowsMicros,
        error: figures.error,
      });
    }
  }
  for (const row of rows) {
    lines.push({
      type: "comparison",
      metric: row.metric.id,
      title: row.metric.title,
      unit: row.metric.unit,
      better: row.metric.better,
      [results[0]?.name ?? "subject"]: row.subject,
      ...(results[1] === undefined ? {} : { [results[1].name]: row.baseline, ratio: row.ratio }),
      goal: row.goal,
      met: row.met,
      errors: row.errors.length > 0 ? row.errors : undefined,
    });
  }
  if (requestCounts !== undefined) lines.push(...requestCountLines(requestCounts));
  lines.push({ type: "end", seconds: (Date.now() - started) / 1000 });
  return lines.map((line) => JSON.stringify(line)).join("\n") + "\n";
}

async function main(): Promise<void> {
  const options = parseOptions();
  const seed = options.seed === undefined ? randomBytes(16) : Buffer.from(options.seed, "hex");
  const content = new ContentSource(seed);
  const only =
    options.only ??
    (options.driver === "s3"
      ? [...S3_WORKLOADS, ...ZB_DEFAULT_IDS]
      : options.driverIpc || options.driver !== undefined
        ? IPC_WORKLOADS
        : [...WORKLOADS.map((workload) => workload.id), ...ZB_DEFAULT_IDS]);
  const workloads = [...WORKLOADS, ...zbWorkloads({ requests: options.zbRequests })].filter(
    (workload) => only.includes(workload.id),
  );
  progress(`machine: ${JSON.stringify(machine())}; seed ${seed.toString("hex")}`);

  const { registries, note, cleanup, ceph } = await startRegistries(options);
  if (note !== undefined) progress(note);
  const clients = registries.map((registry) => new RegistryClient(registry.url));
  // Once only: an interruption and the run's own end may both ask for it.
  let stopped: Promise<void> | undefined;
  const stopAll = () =>
    (stopped ??= (async () => {
      for (const client of clients) client.close();
      await Promise.all(registries.map((registry) => registry.stop()));
      await cleanup?.();
    })());
  // Interrupted, or its reader gone (`| head`: the next progress line fails with EPIPE), the run
  // stops its registries before it exits, rather than leave them serving.
  const stopAndExit = (code: number) => void stopAll().then(() => process.exit(code));
  process.once("SIGINT", () => stopAndExit(130));
  process.once("SIGTERM", () => stopAndExit(143));
  process.once("SIGHUP", () => stopAndExit(129));
  for (const output of [process.stdout, process.stderr]) {
    output.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
      stopAndExit(141);
    });
  }

  let requestCounts: RequestCount[] | undefined;
  let zbMemory: (MemoryOverRun | undefined)[] = [];
  const results: RegistryResults[] = registries.map((registry) => ({
    name: registry.name,
    idleRssMiB: undefined,
    workloads: new Map(),
  }));
  try {
    // Let start-up work (JIT, GC, lazy loading) settle before calling the server idle.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (const [index, registry] of registries.entries()) {
      const idle = await idleRssMiB(registry);
      (results[index] as RegistryResults).idleRssMiB = idle;
      progress(
        `${registry.name} at ${registry.url}: idle RSS ${idle === undefined ? "unknown" : `${idle.toFixed(1)} MiB`}`,
      );
    }
    const timeline = new MemoryTimeline(registries.map((registry) => registry.process));
    const contexts: WorkloadContext[] = registries.map((registry, index) => ({
      registry,
      client: clients[index] as RegistryClient,
      content,
      loadSeconds: options.loadSeconds,
      state: new Map(),
    }));
    const runAll = async (list: Workload[], memoryOf: MemoryTimeline) => {
      for (const workload of list) {
        const reason = workload.unavailable?.();
        if (reason !== undefined) {
          progress(`${workload.id}: skipped, ${reason}`);
          continue;
        }
        progress(`${workload.id}: ${workload.title}`);
        memoryOf.running(workload.id);
        await runWorkload(workload, contexts, results, options.repetitions);
      }
    };
    // The zb- workloads (50 images in flight) run last, on a memory timeline of their own: the
    // run's memory rows are issue 21's goal for the mixed run it describes, which has no such load.
    const isZb = (workload: Workload) => workload.id.startsWith("zb-");
    const zb = workloads.filter(isZb);
    await runAll(
      workloads.filter((workload) => !isZb(workload)),
      timeline,
    );
    // The peaks workloads measured themselves (they reset VmHWM) count towards the run's peak.
    const ownPeaks = results.map((result) =>
      [...result.workloads.values()].flatMap((workload) =>
        [...workload.figures].flatMap(([id, values]) => (id.endsWith("-peak-rss") ? values : [])),
      ),
    );
    const memory = await timeline.finish(ownPeaks);
    memory.forEach((figures, index) => {
      if (figures !== undefined && zb.length < workloads.length)
        (results[index] as RegistryResults).memory = figures;
    });
    if (zb.length > 0) {
      const zbTimeline = new MemoryTimeline(registries.map((registry) => registry.process));
      await runAll(zb, zbTimeline);
      zbMemory = await zbTimeline.finish([]);
    }
    if (ceph !== undefined && options.driver === "s3") {
      const berth = { cli: options.berthCli, cpuProfileDir: undefined, env: options.berthEnv };
      requestCounts = await countBackendRequests(ceph, registries, content, berth, progress);
    }
  } finally {
    await stopAll();
  }

  const subject = results[0] as RegistryResults;
  const baseline = results[1];
  const goals = options.driverIpc
    ? IPC_GOALS
    : options.driver === "rados"
      ? RADOS_GOALS
      : options.driver === "s3"
        ? S3_GOALS
        : undefined;
  const rows = compare(workloads, subject, baseline, goals);
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`${formatTable(rows, subject.name, baseline?.name)}\n`);
  for (const line of clientSaturation(results)) process.stdout.write(`${line}\n`);
  for (const line of backendCpu(results)) process.stdout.write(`${line}\n`);
  if (requestCounts !== undefined) process.stdout.write(`${formatRequestCounts(requestCounts)}\n`);
  for (const result of results) {
    if (result.memory !== undefined) {
      process.stdout.write(`${formatTimeline(result.name, result.memory)}\n`);
    }
  }
  zbMemory.forEach((memory, index) => {
    const name = `${results[index]?.name}, zb- workloads`;
    if (memory !== undefined) process.stdout.write(`${formatTimeline(name, memory)}\n`);
  });
  if (note !== undefined) process.stdout.write(`${note}\n`);
  process.stdout.write(
    `run took ${seconds.toFixed(0)} s; ratio = ${subject.name} ÷ ${baseline?.name ?? "—"}\n`,
  );
  if (options.json !== undefined) {
    await writeFile(
      options.json,
      jsonLines(options, seed, note, results, rows, zbMemory, requestCounts),
    );
    progress(`JSON lines written to ${options.json}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
