// Memory stays flat while a large upload streams through the storage layer onto the filesystem
// driver. The upload runs in its own process (src/testing/upload-probe.ts) so its peak RSS is the
// upload's alone; the 1 GiB figure comes from running that probe with 1024.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import type { UploadProbeResult } from "../testing/upload-probe.js";

const probe = fileURLToPath(new URL("../testing/upload-probe.js", import.meta.url));
const MEBIBYTES = 256;
/** Peak RSS may grow by buffers in flight, never by the blob. */
const MAX_GROWTH_MIB = 48;

describe("memory during a large upload", () => {
  it(`stays flat while ${MEBIBYTES} MiB stream through an upload`, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [probe, String(MEBIBYTES)]);
    const result = JSON.parse(stdout) as UploadProbeResult;
    const growth = result.peakRssMiB - result.rssBeforeMiB;
    assert.ok(
      growth < MAX_GROWTH_MIB,
      `peak RSS ${result.peakRssMiB.toFixed(0)} MiB, ${growth.toFixed(0)} MiB over the ${result.rssBeforeMiB.toFixed(0)} MiB before the upload`,
    );
  });
});
