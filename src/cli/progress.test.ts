// berth garbage-collect's progress line, on a terminal (one line rewritten in place, log lines
// printed above it without tearing it) and elsewhere (plain lines). A recording stream stands in
// for stderr; cli.test.ts runs the command itself.

import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import type { GarbageCollectProgress } from "../storage/index.js";
import { describeProgress, ProgressLine } from "./progress.js";

class Recorder extends Writable {
  text = "";
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const marking: GarbageCollectProgress = {
  phase: "mark",
  repositories: 3,
  blobs: 0,
  candidates: 0,
  bytesToFree: 0,
  toSweep: 0,
  swept: 0,
  elapsedMs: 1_000,
  sweepStartedMs: 0,
};
const sweeping: GarbageCollectProgress = {
  ...marking,
  phase: "sweep",
  blobs: 40,
  candidates: 5,
  bytesToFree: 3 * 1024 * 1024,
  toSweep: 20,
  swept: 10,
  elapsedMs: 12_000,
  sweepStartedMs: 2_000,
};

describe("garbage-collect progress", () => {
  it("says what was seen, the bytes to free, the elapsed time and, while sweeping, an ETA", () => {
    assert.equal(
      describeProgress(sweeping),
      "sweeping, 3 repositories, 40 blobs seen, 5 to delete (3.0 MiB), elapsed 12s, ETA 10s",
    );
    assert.doesNotMatch(describeProgress(marking), /ETA/);
  });

  it("rewrites one line on a terminal, with log lines above it", () => {
    const tty = new Recorder(true);
    const log = new Recorder(false);
    const line = new ProgressLine(tty);
    line.update(marking);
    line.above("repo: marking manifest sha256:abc", log);
    line.update(sweeping);
    line.end();
    assert.equal(log.text, "repo: marking manifest sha256:abc\n");
    assert.equal(
      tty.text,
      `\r\x1b[K${describeProgress(marking)}` +
        `\r\x1b[K${describeProgress(marking)}` +
        `\r\x1b[K${describeProgress(sweeping)}\n`,
    );
  });

  it("writes plain lines elsewhere, at each phase change and every few seconds", () => {
    const plain = new Recorder(false);
    const line = new ProgressLine(plain);
    line.update(marking);
    line.update({ ...marking, repositories: 4 });
    line.update(sweeping);
    line.end();
    assert.equal(
      plain.text,
      `progress: ${describeProgress(marking)}\nprogress: ${describeProgress(sweeping)}\n`,
    );
  });
});
