// A server process's memory and CPU as Linux reports them in /proc, read from outside the process
// so the figures are the server's own and not the load generator's.

import { execFileSync } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";

const STATUS_UNIT = "kB";

/** Clock ticks per second of utime/stime in /proc/<pid>/stat (nearly always 100). */
const CLOCK_TICKS = readClockTicks();

function readClockTicks(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** Memory of a process, in bytes. */
export interface MemoryFigures {
  /** VmRSS: resident now. */
  rss: number;
  /** VmHWM: the highest resident size since start or since the peak was last reset. */
  peak: number;
}

/** Reads the memory and CPU of one process. */
export class ProcessStats {
  readonly pid: number;

  constructor(pid: number) {
    this.pid = pid;
  }

  async memory(): Promise<MemoryFigures> {
    const status = await readFile(`/proc/${this.pid}/status`, "utf8");
    return { rss: statusField(status, "VmRSS"), peak: statusField(status, "VmHWM") };
  }

  /**
   * User plus system CPU seconds the process and its running descendants (an out-of-process
   * storage driver) have used since they started.
   */
  async cpuSeconds(): Promise<number> {
    let total = 0;
    for (const pid of [this.pid, ...(await descendants(this.pid))]) {
      total += await processCpuSeconds(pid).catch(() => 0);
    }
    return total;
  }

  /**
   * Resets VmHWM to the current RSS (writing "5" to clear_refs; needs root or the same user and
   * Linux 4.0+). False where that is refused: callers then rely on sampling.
   */
  async resetPeak(): Promise<boolean> {
    try {
      await writeFile(`/proc/${this.pid}/clear_refs`, "5");
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Samples RSS every `intervalMs` until the returned function is called, which resolves to the
   * highest RSS seen or VmHWM, whichever is higher (VmHWM is exact when resetPeak succeeded
   * before; sampling covers the case where it could not).
   */
  async watchPeak(intervalMs = 50): Promise<() => Promise<number>> {
    const reset = await this.resetPeak();
    let highest = (await this.memory()).rss;
    let reading: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      reading = this.memory().then(
        (figures) => void (highest = Math.max(highest, figures.rss)),
        () => undefined,
      );
    }, intervalMs);
    return async () => {
      clearInterval(timer);
      await reading;
      const figures = await this.memory();
      return Math.max(highest, figures.rss, reset ? figures.peak : 0);
    };
  }
}

async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The pids of the running descendants of `pid` (from each thread's `children` in /proc). */
async function descendants(pid: number): Promise<number[]> {
  const found: number[] = [];
  let tasks: string[];
  try {
    tasks = await readdir(`/proc/${pid}/task`);
  } catch {
    return found;
  }
  for (const task of tasks) {
    const children = await readFile(`/proc/${pid}/task/${task}/children`, "utf8").catch(() => "");
    for (const child of children.split(" ").filter((text) => text !== "")) {
      found.push(Number(child), ...(await descendants(Number(child))));
    }
  }
  return found;
}

function statusField(status: string, name: string): number {
  const line = status.split("\n").find((candidate) => candidate.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`no ${name} in /proc status`);
  const [value, unit] = line
    .slice(name.length + 1)
    .trim()
    .split(/\s+/);
  if (unit !== STATUS_UNIT) throw new Error(`unexpected unit ${unit} for ${name}`);
  return Number(value) * 1024;
}
