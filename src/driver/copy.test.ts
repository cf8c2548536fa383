// copyContent through a driver's reader (the path of every driver without its own copyTo: inmemory,
// s3, azure) with a source that delivers small chunks slowly, as a network stream does: the
// destination's failure arrives while the copy waits for the source, not for the destination.

import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { copyContent } from "./copy.js";
import { DriverErrorCode, DestinationClosedError, type StorageDriver } from "./driver.js";
import { CollectingWritable, sleep } from "./testsuite/support.js";

const KiB = 1024;

/** A driver with only a reader: 64 chunks of 16 KiB, each a timer later (after any setImmediate). */
function slowSourceDriver(): StorageDriver {
  const chunk = Buffer.alloc(16 * KiB, 7);
  const driver: Pick<StorageDriver, "name" | "reader"> = {
    name: "slow",
    reader: () =>
      Promise.resolve(
        Readable.from(
          (async function* () {
            for (let i = 0; i < 64; i++) {
              await sleep(1);
              yield chunk;
            }
          })(),
        ),
      ),
  };
  return driver as StorageDriver;
}

describe("copyContent through a reader", () => {
  for (const how of ["error", "close"] as const) {
    it(`rejects with DestinationClosedError when the destination does ${how} between source chunks`, async () => {
      const destination = new CollectingWritable({ bytes: 100 * KiB, how });
      const error = await copyContent(slowSourceDriver(), "/a/b", destination, 0).then(
        () => assert.fail("the copy resolved"),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof DestinationClosedError, `wrong error: ${String(error)}`);
      assert.equal(error.code, DriverErrorCode.DestinationClosed);
      if (how === "error") {
        assert.match(String((error.cause as Error).message), /destination failed on purpose/);
      }
      // The destination's own "error" event (emitted after its failed write's callback) found a
      // listener: an uncaught one would fail this test. Wait until it has been emitted.
      if (!destination.closed) await new Promise((resolve) => destination.once("close", resolve));
      assert.ok(destination.content().length <= 100 * KiB + 16 * KiB);
    });
  }
});
