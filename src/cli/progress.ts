// Progress of `berth garbage-collect` (and `berth retention`) on stderr: on a terminal one line rewritten in place
// (repositories and blobs seen, bytes to free, elapsed, ETA while sweeping), else a plain line
// every few seconds and at each phase change, so logs stay readable.

import type { Writable } from "node:stream";
import type { GarbageCollectProgress } from "../storage/index.js";

const TTY_EVERY_MS = 200;
const PLAIN_EVERY_MS = 5_000;

function bytes(count: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

/** The progress as one line of text. */
export function describeProgress(state: GarbageCollectProgress): string {
  const parts = [
    state.phase === "mark" ? "marking" : "sweeping",
    `${state.repositories} repositories`,
    `${state.blobs} blobs seen`,
    `${state.candidates} to delete (${bytes(state.bytesToFree)})`,
    `elapsed ${seconds(state.elapsedMs)}`,
  ];
  if (state.phase === "sweep" && state.swept > 0 && state.toSweep > state.swept) {
    const sweeping = state.elapsedMs - state.sweepStartedMs;
    parts.push(`ETA ${seconds((sweeping / state.swept) * (state.toSweep - state.swept))}`);
  }
  return parts.join(", ");
}

export class ProgressLine {
  private readonly tty: boolean;
  private last = 0;
  private phase: string | undefined;
  private shown = false;
  private latest: GarbageCollectProgress | undefined;

  constructor(private readonly out: Writable & { isTTY?: boolean }) {
    this.tty = out.isTTY === true;
  }

  update(state: GarbageCollectProgress): void {
    this.latest = state;
    const now = performance.now();
    const phaseChanged = state.phase !== this.phase;
    if (!phaseChanged && now - this.last < (this.tty ? TTY_EVERY_MS : PLAIN_EVERY_MS)) return;
    this.phase = state.phase;
    this.last = now;
    this.show(describeProgress(state));
  }

  /** Shows a progress text of another phase (retention's), throttled like `update`. */
  status(text: string, phase: string): void {
    const now = performance.now();
    if (phase === this.phase && now - this.last < (this.tty ? TTY_EVERY_MS : PLAIN_EVERY_MS)) {
      return;
    }
    this.phase = phase;
    this.last = now;
    this.show(text);
  }

  /** Writes `line` to `stream` without tearing the progress line. */
  above(line: string, stream: Writable): void {
    if (this.tty && this.shown) this.out.write("\r\x1b[K");
    stream.write(`${line}\n`);
    if (this.tty && this.shown && this.latest) this.out.write(describeProgress(this.latest));
  }

  /** Leaves the last progress on its own line. */
  end(): void {
    if (this.tty && this.shown) this.out.write("\n");
  }

  private show(text: string): void {
    if (this.tty) {
      this.out.write(`\r\x1b[K${text}`);
      this.shown = true;
    } else {
      this.out.write(`progress: ${text}\n`);
    }
  }
}
