// `node dist/bench/profile.js FILE.cpuprofile [--top N] [--results FILE.jsonl --workload ID]`:
// the N functions (default 25) with the most self time in a V8 CPU profile (what `npm run bench --
// --cpu-prof DIR` leaves for Berth) and the share of each source file, so a finding can cite where
// the time goes without a GUI. With the run's --json results and a workload id, only the samples
// taken inside that workload's timed windows count: a profile covers the whole server process, and
// the setup of a pull (a 1 GiB push) would otherwise drown the pull.

import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The Berth timed windows of `workload` in a bench --json file. */
async function windowsOf(resultsFile: string, workload: string): Promise<[number, number][]> {
  const lines = (await readFile(resultsFile, "utf8")).split("\n").filter((line) => line !== "");
  const result = lines
    .map(
      (line) =>
        JSON.parse(line) as {
          type?: string;
          registry?: string;
          workload?: string;
          windowsMicros?: [number, number][];
        },
    )
    .find(
      (entry) =>
        entry.type === "result" && entry.registry === "Berth" && entry.workload === workload,
    );
  if (result?.windowsMicros === undefined)
    throw new Error(`no Berth result for ${workload} in ${resultsFile}`);
  return result.windowsMicros;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: "string" }, results: { type: "string" }, workload: { type: "string" } },
  });
  const file = positionals[0];
  if (file === undefined) {
    throw new Error(
      "usage: node dist/bench/profile.js FILE.cpuprofile [--top N] [--results FILE --workload ID]",
    );
  }
  const count = Number(values.top ?? 25);
  const windows =
    values.results !== undefined && values.workload !== undefined
      ? await windowsOf(values.results, values.workload)
      : undefined;
  const profile = JSON.parse(await readFile(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  let time = profile.startTime;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    time += delta;
    if (windows !== undefined && !windows.some(([from, to]) => time >= from && time <= to)) return;
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
  });
  const total = [...selfMicros.values()].reduce((sum, micros) => sum + micros, 0);

  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    const where = shorten(frame.url);
    const name = `${frame.functionName || "(anonymous)"} ${where}:${frame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    byFile.set(where || "(native/vm)", (byFile.get(where || "(native/vm)") ?? 0) + micros);
  }
  const print = (title: string, entries: Map<string, number>, limit: number) => {
    process.stdout.write(`${title}\n`);
    for (const [name, micros] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
      const share = ((micros / total) * 100).toFixed(1).padStart(5);
      process.stdout.write(`${share}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
    }
  };
  const scope = windows === undefined ? "" : ` in the timed windows of ${values.workload}`;
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled${scope}\n`);
  print("self time by function:", byFunction, count);
  print("self time by file:", byFile, 15);
}

/** node:internal paths and the checkout's dist paths, without the noise before them. */
function shorten(url: string): string {
  const dist = url.lastIndexOf("/dist");
  if (dist >= 0) return url.slice(url.indexOf("/", dist + 1) + 1);
  const modules = url.lastIndexOf("node_modules/");
  return modules >= 0 ? url.slice(modules) : url;
}

// Piped into `head`, stdout closes early: that is not a failure.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
});

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
