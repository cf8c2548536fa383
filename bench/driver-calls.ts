// `npm run bench:driver-calls`: the cost per call of the out-of-process driver protocol, apart
// from HTTP and the storage layer. The filesystem driver in process, served by `berth
// driver-server` with each call as its own rpc (as to a protocol 1.2 driver), and served with the
// call stream (1.3), each given the same calls with a fixed number in flight: PutContent of
// 4 KiB, Stat, GetContent of 4 KiB, Delete. Reports per call the wall time and the CPU of Berth's
// process and of the driver's (/proc), medians of alternated repetitions. Progress on stderr,
// the table on stdout.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { createDriver } from "../src/driver/index.js";
import { createRemoteDriver } from "../src/driver/remote/index.js";
import type { StorageDriver } from "../src/driver/driver.js";
import { driverScripts } from "../src/testing/driver-scripts.js";
import { ProcessStats } from "./process.js";

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError(`not a count: ${value}`);
  return parsed;
}

const options = new Command()
  .description("per-call cost of the out-of-process driver protocol (issue 17)")
  .option("--calls <n>", "calls of each kind per repetition", positiveInteger, 2000)
  .option("--in-flight <n>", "calls in flight at once", positiveInteger, 16)
  .option("--repetitions <n>", "repetitions (the median counts)", positiveInteger, 3)
  .parse()
  .opts<{ calls: number; inFlight: number; repetitions: number }>();

interface Setup {
  name: string;
  driver: StorageDriver;
  /** The driver process, when there is one. */
  child?: ProcessStats;
}

type Kind = "putContent" | "stat" | "getContent" | "delete";
const KINDS: Kind[] = ["putContent", "stat", "getContent", "delete"];

/** Per call: wall µs, Berth's CPU µs, the driver process's CPU µs. */
type Figures = [wall: number, berth: number, driver: number];

const content = randomBytes(4096);

/** Runs `count` calls, `inFlight` at a time. */
async function run(count: number, inFlight: number, call: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await call(next++);
    }),
  );
}

async function measure(setup: Setup, kind: Kind, round: number): Promise<Figures> {
  const { driver } = setup;
  const path = (i: number) => `/calls/r${round}/${setup.name.replace(/\W/g, "")}/f${i}`;
  const calls: Record<Kind, (i: number) => Promise<unknown>> = {
    putContent: (i) => driver.putContent(path(i), content),
    stat: (i) => driver.stat(path(i)),
    getContent: (i) => driver.getContent(path(i)),
    delete: (i) => driver.delete(path(i)),
  };
  const cpu = process.cpuUsage();
  const childCpu = (await setup.child?.cpuSeconds()) ?? 0;
  const started = performance.now();
  await run(options.calls, options.inFlight, calls[kind]);
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const childUsed = ((await setup.child?.cpuSeconds()) ?? 0) - childCpu;
  const per = (microseconds: number) => microseconds / options.calls;
  return [per(wall * 1000), per(used.user + used.system), per(childUsed * 1e6)];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const scratch = await mkdtemp(join(tmpdir(), "berth-driver-calls-"));
const bin = driverScripts(join(scratch, "bin"), { callsfs: ["filesystem"] });
const executable = join(bin, "registry-storage-callsfs");
const setups: Setup[] = [];
try {
  setups.push({
    name: "in process",
    driver: await createDriver("filesystem", { rootdirectory: join(scratch, "in") }),
  });
  for (const [name, callStream] of [
    ["unary rpcs", false],
    ["call stream", true],
  ] as const) {
    const remote = await createRemoteDriver(
      "callsfs",
      executable,
      { rootdirectory: join(scratch, name.replace(/\W/g, "")) },
      { callStream },
    );
    setups.push({ name, driver: remote, child: new ProcessStats(remote.pid!) });
  }
  const load = [loadavg()[0]!];
  const results = new Map<string, Figures[]>();
  for (let round = 0; round < options.repetitions; round++) {
    for (const setup of setups) {
      for (const kind of KINDS) {
        const figures = await measure(setup, kind, round);
        const key = `${setup.name}\t${kind}`;
        results.set(key, [...(results.get(key) ?? []), figures]);
        process.stderr.write(
          `${round + 1}/${options.repetitions} ${setup.name} ${kind}: ${figures.map((f) => f.toFixed(0)).join(" / ")} µs\n`,
        );
      }
    }
    load.push(loadavg()[0]!);
  }
  const shown = (values: number[]) => median(values).toFixed(0);
  console.log(
    `${options.calls} calls of each kind, ${options.inFlight} in flight, medians of ${options.repetitions}; ` +
      `load average ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}`,
  );
  console.log("| setup | call | wall µs/call | Berth CPU µs/call | driver CPU µs/call |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const [key, figures] of results) {
    const [setup, kind] = key.split("\t");
    const driver = setup === "in process" ? "—" : shown(figures.map((f) => f[2]));
    console.log(
      `| ${setup} | ${kind} | ${shown(figures.map((f) => f[0]))} | ${shown(figures.map((f) => f[1]))} | ${driver} |`,
    );
  }
} finally {
  for (const setup of setups) await setup.driver.close?.();
  await rm(scratch, { recursive: true, force: true });
}
