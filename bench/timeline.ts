// Memory over a whole run (issue 21 item 1): each server's RSS sampled every half second from its
// first workload to 2 s after its last, labelled with the workload running, so that the report can
// show the peak over the whole mixed run (not only during one big push), what the server still
// holds once the load is over, and the RSS over time.

import type { ProcessStats } from "./process.js";

/** How often the servers' RSS is read. */
const SAMPLE_MS = 500;
/** How long after the last workload the "after the run" figure is read. */
export const SETTLE_MS = 2000;

/** One reading: seconds since the run started, RSS in MiB, the workload then running. */
export interface RssSample {
  seconds: number;
  rssMiB: number;
  workload: string;
}

/** What a run's timeline gives a registry's results. */
export interface MemoryOverRun {
  /** The highest RSS over the whole run: VmHWM readings and samples, whichever is higher. */
  peakMiB: number;
  /** RSS 2 s after the last workload ended. */
  afterMiB: number;
  samples: RssSample[];
}

const MiB = 1024 * 1024;

/**
 * Samples the RSS of each process (undefined: a registry given by --url without --pid) until
 * `finish`. Workloads that measure their own peak reset VmHWM (ProcessStats.watchPeak), so the
 * whole-run peak is the highest of every VmHWM read here, every sample, and `extraPeaksMiB`.
 */
export class MemoryTimeline {
  private readonly started = performance.now();
  private readonly samples: RssSample[][];
  private readonly peaks: number[];
  private workload = "start";
  private readonly timer: NodeJS.Timeout;
  private reading: Promise<void> = Promise.resolve();

  constructor(private readonly processes: (ProcessStats | undefined)[]) {
    this.samples = processes.map(() => []);
    this.peaks = processes.map(() => 0);
    this.timer = setInterval(() => {
      this.reading = this.sample();
    }, SAMPLE_MS);
  }

  /** Labels the samples from now on with `id`. */
  running(id: string): void {
    this.workload = id;
  }

  private async sample(): Promise<void> {
    const seconds = (performance.now() - this.started) / 1000;
    await Promise.all(
      this.processes.map(async (process, index) => {
        if (process === undefined) return;
        const figures = await process.memory().catch(() => undefined);
        if (figures === undefined) return;
        const rssMiB = figures.rss / MiB;
        this.samples[index]!.push({ seconds, rssMiB, workload: this.workload });
        this.peaks[index] = Math.max(this.peaks[index]!, figures.peak / MiB, rssMiB);
      }),
    );
  }

  /**
   * Waits SETTLE_MS after the last workload, takes the "after" reading and stops sampling. Each
   * registry's `extraPeaksMiB` are the peaks its workloads measured themselves.
   */
  async finish(extraPeaksMiB: number[][]): Promise<(MemoryOverRun | undefined)[]> {
    this.running("after");
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    clearInterval(this.timer);
    await this.reading;
    await this.sample();
    return this.processes.map((process, index) => {
      const samples = this.samples[index]!;
      if (process === undefined || samples.length === 0) return undefined;
      const extra = (extraPeaksMiB[index] ?? []).filter((figure) => Number.isFinite(figure));
      return {
        peakMiB: Math.max(this.peaks[index]!, ...extra),
        afterMiB: samples.at(-1)!.rssMiB,
        samples,
      };
    });
  }
}

/**
 * The RSS over time as one line per registry: for each workload in order, the highest RSS while
 * it ran, then the RSS after the run (`name: push-1g 118, push-small 96, ... after 71 MiB`).
 */
export function formatTimeline(name: string, memory: MemoryOverRun): string {
  const highest = new Map<string, number>();
  for (const sample of memory.samples) {
    if (sample.workload === "after") continue;
    highest.set(sample.workload, Math.max(highest.get(sample.workload) ?? 0, sample.rssMiB));
  }
  const parts = [...highest].map(([workload, rss]) => `${workload} ${rss.toFixed(0)}`);
  return (
    `memory over time, ${name} (highest RSS in MiB while each workload ran, sampled every ` +
    `${SAMPLE_MS} ms): ${parts.join(", ")}; after the run ${memory.afterMiB.toFixed(0)} MiB; ` +
    `peak over the run ${memory.peakMiB.toFixed(0)} MiB`
  );
}
