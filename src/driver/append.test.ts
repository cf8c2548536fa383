// FileAppender's memory: concurrent large writers share a bounded number of batches in flight
// beyond each one's first, and every file still gets exactly its bytes.

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
});
