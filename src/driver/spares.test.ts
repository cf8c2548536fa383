// The spare buffers while busy: a push's spare batches go once copies took over (skopeo's pull of
// the layers it just pushed), never while no copy runs (a push's pause between layers); the copies'
// own spares stay while they run.

import assert from "node:assert/strict";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { FileAppender } from "./append.js";
import { copyRange } from "./copy.js";
import { dropSpareBuffers } from "./spares.js";
import { CollectingWritable } from "./testsuite/support.js";

const MiB = 1024 * 1024;

describe("dropSpareBuffers", () => {
  it("lets go of a push's spare batches once copies ran after it, not before", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-spares-"));
    try {
      dropSpareBuffers();
      // A 4 MiB push: 3 batches after its first MiB, spare once written.
      const pushed = await open(join(dir, "pushed"), "w");
      try {
        const appender = new FileAppender(pushed.fd, 0);
        for (let i = 0; i < 64; i++) await appender.write(Buffer.alloc(64 * 1024, i));
        await appender.finish(true);
      } finally {
        await pushed.close();
      }
      await sleep(30);
      // Unused for long enough, but nothing else ran: a pause between a push's layers.
      assert.equal(dropSpareBuffers(20), 0, "batches dropped with no copy running");
      // A pull of 6 MiB: the copy's own spare buffers were used just now and stay.
      const file = join(dir, "pulled");
      await writeFile(file, Buffer.alloc(6 * MiB, 3));
      const pulled = await open(file, "r");
      try {
        await copyRange(pulled, new CollectingWritable(), 0, 6 * MiB, () => assert.fail("closed"));
      } finally {
        await pulled.close();
      }
      assert.equal(dropSpareBuffers(20), 3 * MiB, "not only the batches were dropped");
      assert.equal(dropSpareBuffers(20), 0, "dropped twice, or the copy's spares dropped");
      assert.ok(dropSpareBuffers() >= 2 * MiB, "the copy kept no spare buffer");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
