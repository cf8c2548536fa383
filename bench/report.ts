// The bench's results: figures per registry and metric, the goals of issue 7 checked on them, and
// the two outputs, a table for people (stdout) and JSON lines for tools (--json FILE).

import type { Better, Metric, Workload } from "./workloads.js";
import { SETTLE_MS, type MemoryOverRun } from "./timeline.js";

/** The figures of one registry on one workload. */
export interface WorkloadResult {
  /** Per metric id, one figure per repetition. */
  figures: Map<string, number[]>;
  /** Server CPU seconds per repetition (NaN when the server process is unknown). */
  serverCpuSeconds: number[];
  /** Client CPU seconds per repetition, and the timed seconds they were spent in. */
  clientCpuSeconds: number[];
  /** The storage backend's CPU seconds per repetition (NaN when its processes are unknown). */
  backendCpuSeconds: number[];
  timedSeconds: number[];
  /** The timed windows of every repetition, monotonic microseconds (see Meter). */
  windowsMicros: [number, number][];
  /** Why the workload failed on this registry, if it did. */
  error?: string;
}

/** All results of one registry. */
export interface RegistryResults {
  name: string;
  idleRssMiB: number | undefined;
  workloads: Map<string, WorkloadResult>;
  /** RSS over the whole run (bench/timeline.ts), when the server's process could be read. */
  memory?: MemoryOverRun;
}

/** A goal of issue 7 for one metric. */
interface Goal {
  text: string;
  /** Met, not met, or undefined when the figures it needs are missing. */
  check(
    subject: number,
    ratio: number | undefined,
    subjectFigure: (id: string) => number | undefined,
  ): boolean | undefined;
}

const atLeast = (minimum: number): Goal => ({
  text: `≥ ${minimum}×`,
  check: (_subject, ratio) => (ratio === undefined ? undefined : ratio >= minimum),
});
const atMost = (maximum: number, text = `≤ ${maximum}×`): Goal => ({
  text,
  check: (_subject, ratio) => (ratio === undefined ? undefined : ratio <= maximum),
});

/** Issue 7's goals (the default), Berth ÷ distribution in the same run unless absolute. */
const GOALS: Record<string, Goal> = {
  "push-1g": atLeast(1.5),
  "push-chunked-256m": atLeast(1.5),
  "pull-1g": atLeast(1.0),
  "manifest-get": atLeast(4),
  "manifest-get-p99": atMost(1.0, "no worse (≤ 1×)"),
  "blob-head": atLeast(4),
  "blob-head-p99": atMost(1.0, "no worse (≤ 1×)"),
  "v2-check": atLeast(4),
  "v2-check-p99": atMost(1.0, "no worse (≤ 1×)"),
  "push-small": atLeast(2),
  "push-small-p50": atMost(1.0, "no worse (≤ 1×)"),
  "push-small-p99": atMost(1.0, "no worse (≤ 1×)"),
  "push-small-cold": atLeast(2),
  "push-small-cold-p50": atMost(1.0, "no worse (≤ 1×)"),
  "push-small-cold-p99": atMost(1.0, "no worse (≤ 1×)"),
  "skopeo-push": atMost(1.0),
  "skopeo-pull": atMost(1.0),
  "push-1g-peak-rss": {
    text: "≤ 120 MiB and ≤ 1.1× its 256 MiB peak",
    check: (subject, _ratio, figure) => {
      const smaller = figure("push-256m-peak-rss");
      return subject <= 120 && (smaller === undefined || subject <= 1.1 * smaller);
    },
  },
  "idle-rss": { text: "≤ 80 MiB", check: (subject) => subject <= 80 },
  "run-peak-rss": { text: "≤ 120 MiB", check: (subject) => subject <= 120 },
  "after-run-rss": { text: "< 100 MiB", check: (subject) => subject < 100 },
};

/**
 * Issue 17's goals with --driver-ipc: the filesystem driver out of process keeps at least 80% of
 * the in-process figure (Berth IPC ÷ Berth in the same run).
 */
/** --driver rados: the native path should beat the gateway on each (issue 16). */
export const RADOS_GOALS: Record<string, Goal> = {
  "push-1g": atLeast(1),
  "pull-1g": atLeast(1),
  "push-small": atLeast(1),
};

/** --driver s3: Berth's s3 driver ÷ distribution's on the same RGW, redirects off (issue 21). */
export const S3_GOALS: Record<string, Goal> = {
  "pull-1g": atLeast(1),
};

export const IPC_GOALS: Record<string, Goal> = {
  "push-1g": atLeast(0.8),
  "pull-1g": atLeast(0.8),
  "push-small": atLeast(0.8),
};

/** The idle RSS row is measured once per registry, not by a workload. */
const IDLE_RSS: Metric = {
  id: "idle-rss",
  title: "server idle RSS after start",
  unit: "MiB",
  better: "lower",
  aggregate: "max",
};

/** Measured over the whole run, not by a workload (bench/timeline.ts). */
const RUN_PEAK_RSS: Metric = {
  id: "run-peak-rss",
  title: "server peak RSS over the whole run (VmHWM)",
  unit: "MiB",
  better: "lower",
  aggregate: "max",
};
const AFTER_RUN_RSS: Metric = {
  id: "after-run-rss",
  title: `server RSS ${SETTLE_MS / 1000} s after the run`,
  unit: "MiB",
  better: "lower",
  aggregate: "max",
};

/** One row of the comparison: a metric, each registry's figure, the ratio and the goal. */
export interface ComparisonRow {
  workload: string;
  metric: Metric;
  subject: number | undefined;
  baseline: number | undefined;
  ratio: number | undefined;
  goal: string | undefined;
  met: boolean | undefined;
  subjectCpuSeconds: number | undefined;
  baselineCpuSeconds: number | undefined;
  errors: string[];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function aggregate(metric: Metric, values: number[] | undefined): number | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const figure = metric.aggregate === "max" ? Math.max(...values) : median(values);
  return Number.isNaN(figure) ? undefined : figure;
}

/** The figure of `metric` for a registry: aggregated over repetitions. */
export function figureOf(
  results: RegistryResults,
  workloadId: string,
  metric: Metric,
): number | undefined {
  if (metric.id === IDLE_RSS.id) return results.idleRssMiB;
  if (metric.id === RUN_PEAK_RSS.id) return results.memory?.peakMiB;
  if (metric.id === AFTER_RUN_RSS.id) return results.memory?.afterMiB;
  return aggregate(metric, results.workloads.get(workloadId)?.figures.get(metric.id));
}

/**
 * The rows: `subject` is the registry judged (Berth, or the --url registry), `baseline` the one it
 * is measured against (distribution), absent when it did not run.
 */
export function compare(
  workloads: Workload[],
  subject: RegistryResults,
  baseline: RegistryResults | undefined,
  goals: Record<string, Goal> = GOALS,
): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  const subjectFigure = (id: string): number | undefined => {
    for (const workload of workloads) {
      const metric = workload.metrics.find((candidate) => candidate.id === id);
      if (metric !== undefined) return figureOf(subject, workload.id, metric);
    }
    return undefined;
  };
  const add = (workloadId: string, metric: Metric, first: boolean) => {
    const ours = figureOf(subject, workloadId, metric);
    const theirs = baseline === undefined ? undefined : figureOf(baseline, workloadId, metric);
    const ratio =
      ours !== undefined && theirs !== undefined && theirs !== 0 ? ours / theirs : undefined;
    const goal = goals[metric.id];
    // Server CPU belongs to the workload, so it is shown on the workload's first row only.
    const cpu = (results: RegistryResults | undefined): number | undefined => {
      const seconds = results?.workloads.get(workloadId)?.serverCpuSeconds ?? [];
      return first && seconds.length > 0 && !seconds.some(Number.isNaN)
        ? median(seconds)
        : undefined;
    };
    const errors = [subject, baseline].flatMap((results) => {
      const error = results?.workloads.get(workloadId)?.error;
      return results === undefined || error === undefined ? [] : [`${results.name}: ${error}`];
    });
    rows.push({
      workload: workloadId,
      metric,
      subject: ours,
      baseline: theirs,
      ratio,
      goal: goal?.text,
      met:
        goal === undefined || ours === undefined
          ? undefined
          : goal.check(ours, ratio, subjectFigure),
      subjectCpuSeconds: cpu(subject),
      baselineCpuSeconds: cpu(baseline),
      errors,
    });
  };
  add("idle", IDLE_RSS, false);
  for (const workload of workloads) {
    workload.metrics.forEach((metric, index) => add(workload.id, metric, index === 0));
  }
  if (subject.memory !== undefined) {
    add("run", RUN_PEAK_RSS, false);
    add("run", AFTER_RUN_RSS, false);
  }
  return rows;
}

function formatFigure(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  if (unit === "req/s" || unit === "blobs/s")
    return value >= 100 ? value.toFixed(0) : value.toFixed(1);
  if (unit === "s") return value.toFixed(2);
  return value.toFixed(1);
}

function betterText(better: Better): string {
  return better === "higher" ? "higher" : "lower";
}

/** The table for stdout. */
export function formatTable(
  rows: ComparisonRow[],
  subjectName: string,
  baselineName: string | undefined,
): string {
  const header = [
    "workload",
    "unit",
    "better",
    subjectName,
    ...(baselineName === undefined ? [] : [baselineName, "ratio"]),
    "goal",
    "met",
    `${subjectName} CPU s`,
    ...(baselineName === undefined ? [] : [`${baselineName} CPU s`]),
  ];
  const lines = rows.map((row) => [
    row.metric.title,
    row.metric.unit,
    betterText(row.metric.better),
    row.errors.some((error) => error.startsWith(`${subjectName}:`))
      ? "failed"
      : formatFigure(row.subject, row.metric.unit),
    ...(baselineName === undefined
      ? []
      : [
          row.errors.some((error) => error.startsWith(`${baselineName}:`))
            ? "failed"
            : formatFigure(row.baseline, row.metric.unit),
          row.ratio === undefined ? "—" : `${row.ratio.toFixed(2)}×`,
        ]),
    row.goal ?? "",
    row.met === undefined ? (row.goal === undefined ? "" : "n/a") : row.met ? "yes" : "NO",
    formatFigure(row.subjectCpuSeconds, "s"),
    ...(baselineName === undefined ? [] : [formatFigure(row.baselineCpuSeconds, "s")]),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => (line[column] ?? "").length)),
  );
  const render = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join(" | ")} |`;
  const separator = `| ${widths.map((width) => "-".repeat(width)).join(" | ")} |`;
  const errors = rows.flatMap((row) =>
    row.errors.map((error) => `failed: ${row.metric.title}: ${error}`),
  );
  return [render(header), separator, ...lines.map(render), ...[...new Set(errors)]].join("\n");
}

/**
 * Lines giving, per workload, the median CPU seconds of the storage backend's processes (Ceph's
 * daemons under `--driver s3`) while each registry's repetitions ran: a registry's total cost on a
 * shared machine is its own CPU plus what its requests make the backend spend.
 */
export function backendCpu(results: RegistryResults[]): string[] {
  const lines: string[] = [];
  const workloads = new Set(results.flatMap((result) => [...result.workloads.keys()]));
  for (const workload of workloads) {
    const figures = results.flatMap((result) => {
      const seconds = result.workloads.get(workload)?.backendCpuSeconds ?? [];
      if (seconds.length === 0 || seconds.some(Number.isNaN)) return [];
      return [`${result.name} ${median(seconds).toFixed(2)} s`];
    });
    if (figures.length > 0) lines.push(`backend CPU, ${workload}: ${figures.join(", ")}`);
  }
  return lines;
}

/** The client's CPU share of one core at or above which its figures may be the client's limit. */
const CLIENT_SATURATED = 0.9;

/**
 * Lines naming the workloads where the bench's own process used ≥ 90% of a core while timed: the
 * figure there may be the client's limit, not the registry's (a lower bound for the registry).
 */
export function clientSaturation(results: RegistryResults[]): string[] {
  const lines: string[] = [];
  for (const registry of results) {
    for (const [workload, result] of registry.workloads) {
      const shares = result.clientCpuSeconds.map(
        (seconds, index) => seconds / (result.timedSeconds[index] ?? Number.NaN),
      );
      if (shares.length === 0) continue;
      const share = median(shares);
      if (share >= CLIENT_SATURATED) {
        lines.push(
          `note: client at ${(share * 100).toFixed(0)}% of a core during ${workload} on ${registry.name}: ` +
            "that figure may be the client's limit (a lower bound for the registry)",
        );
      }
    }
  }
  return lines;
}
