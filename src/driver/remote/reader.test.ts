// A reader whose consumer falls behind: gRPC reports the call's OK status as soon as the last
// message arrived, while messages may still wait in the paused call. The content must end only
// after every one of them was passed on.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { after, it } from "node:test";
import { createDriver, type StorageDriver } from "../index.js";
import { driverScripts } from "../../testing/driver-scripts.js";

const scratch = mkdtempSync(join(tmpdir(), "berth-remote-reader-"));
const bin = driverScripts(join(scratch, "bin"), { slowreadmem: ["inmemory"] });
process.env.PATH = `${bin}:${process.env.PATH ?? ""}`;

let driver: StorageDriver | undefined;
after(async () => {
  await driver?.close?.();
  rmSync(scratch, { recursive: true, force: true });
});

it("a reader consumed late still gives every byte", async () => {
  driver = await createDriver("slowreadmem", {});
  const MiB = 1024 * 1024;
  for (const size of [2 * MiB + 17, 5 * MiB + 3]) {
    const content = randomBytes(size);
    await driver.putContent(`/late/${size}`, content);
    for (let round = 0; round < 3; round++) {
      const stream = await driver.reader(`/late/${size}`, 0);
      // Let the whole call (its messages and its status) arrive before reading anything.
      await sleep(300);
      const read = await buffer(stream);
      assert.equal(read.length, content.length, `bytes read of ${size} (round ${round})`);
      assert.ok(read.equals(content), `content of ${size} (round ${round})`);
    }
  }
});
