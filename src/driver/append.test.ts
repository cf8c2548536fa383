// FileAppender's memory: concurrent large writers share a bounded number of batches in flight
// beyond each one's first, and every file still gets exactly its bytes. Its background syncs: from
// 4 MiB into what a writer is given, each next one after as much again.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FileAppender, SHARED_BATCHES, sharedBatchesInFlight } from "./append.js";

const MiB = 1024 * 1024;

describe("FileAppender", () => {
  it("bounds the batches all writers have in flight beyond each one's first", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-append-"));
    try {
      const writers = 20;
      let most = 0;
      const digests = await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          const handle = await open(join(dir, `file-${w}`), "w");
          const appender = new FileAppender(handle.fd, 0);
          const hash = createHash("sha256");
          try {
            // 12 MiB in 64 KiB chunks, as from a socket: 11 batches after the first MiB.
            for (let i = 0; i < 192; i++) {
              const chunk = Buffer.alloc(64 * 1024, (w * 192 + i) % 251);
              hash.update(chunk);
              await appender.write(chunk);
              most = Math.max(most, sharedBatchesInFlight());
            }
            await appender.finish(true);
          } finally {
            await handle.close();
          }
          return hash.digest("hex");
        }),
      );
      for (let w = 0; w < writers; w++) {
        const written = await readFile(join(dir, `file-${w}`));
        assert.equal(written.length, 12 * MiB);
        assert.equal(createHash("sha256").update(written).digest("hex"), digests[w]);
      }
      // 20 writers with up to 8 batches each would be 160 MiB in flight.
      assert.ok(most <= SHARED_BATCHES, `${most} shared batches in flight at once`);
      assert.ok(most > 0, "no writer ever had a second batch in flight");
      assert.equal(sharedBatchesInFlight(), 0, "batches still counted after every write ended");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("syncs in the background from 4 MiB on, each next sync after as much again", async () => {
    const dir = await mkdtemp(join(tmpdir(), "berth-append-"));
    /** Appends `mib` MiB in 64 KiB chunks after `base` bytes, checks the file, gives the appender. */
    const append = async (name: string, base: number, mib: number) => {
      const handle = await open(join(dir, name), "w");
      const appender = new FileAppender(handle.fd, base);
      const hash = createHash("sha256").update(Buffer.alloc(base));
      try {
        if (base > 0) await handle.write(Buffer.alloc(base), 0, base, 0);
        for (let i = 0; i < mib * 16; i++) {
          const chunk = Buffer.alloc(64 * 1024, i % 251);
          hash.update(chunk);
          await appender.write(chunk);
        }
        await appender.finish(true);
      } finally {
        await handle.close();
      }
      const written = await readFile(join(dir, name));
      assert.equal(createHash("sha256").update(written).digest("hex"), hash.digest("hex"));
      return appender;
    };
    try {
      // One PATCH of a chunked push (8 MiB after what earlier ones kept): its first half is synced
      // while the rest arrives, so the close's sync has half as much left to wait for.
      assert.ok((await append("patch", 24 * MiB, 8)).backgroundSyncs >= 1);
      assert.equal((await append("small", 0, 3)).backgroundSyncs, 0);
      // At 4, 8, 16 and 32 MiB at the most (one in flight at a time may push one later), not every
      // 4 MiB: a 1 GiB push makes four syncs more than at 64 MiB alone.
      const large = (await append("large", 0, 40)).backgroundSyncs;
      assert.ok(large >= 1 && large <= 4, `${large} background syncs over 40 MiB`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
