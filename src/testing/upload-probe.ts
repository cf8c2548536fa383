// Test support: streams a generated blob of `<MiB>` mebibytes through the storage layer's upload
// onto a filesystem driver in a temp dir, and prints JSON with the time taken and the process's
// RSS before and at its peak. Run as its own process (`node upload-probe.js 1024`) so the figures
// are the upload's alone, without a test runner's bookkeeping in the same heap.

import { createHash, randomBytes } from "node:crypto";
import { createRegistryStorage } from "../storage/index.js";
import { createTestDriver } from "./storage-drivers.js";

const MIB = 1024 * 1024;

/** What the probe measured. */
export interface UploadProbeResult {
  mebibytes: number;
  seconds: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
}

/** Streams `mebibytes` MiB through an upload and measures it. */
export async function probeUpload(mebibytes: number): Promise<UploadProbeResult> {
  const test = await createTestDriver("filesystem");
  try {
    const repo = createRegistryStorage(test.driver).repository("probe/upload");
    // Every MiB differs (its number is stamped in), generated as it is asked for, in 64 KiB
    // pieces as a request body arrives. One buffer is reused: by the time the next MiB is
    // stamped, the writer has released the previous one.
    const chunk = randomBytes(MIB);
    const expected = createHash("sha256");
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < mebibytes; i++) {
        chunk.writeUInt32BE(i, 0);
        expected.update(chunk);
        for (let offset = 0; offset < MIB; offset += 64 * 1024) {
          yield chunk.subarray(offset, offset + 64 * 1024);
        }
      }
    }
    const rssBefore = process.memoryUsage().rss;
    const started = process.hrtime.bigint();
    const upload = await repo.blobs.startUpload();
    await upload.append(body());
    const info = await upload.finish(`sha256:${expected.digest("hex")}`, mebibytes * MIB);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (info.size !== mebibytes * MIB) throw new Error(`stored ${info.size} bytes`);
    return {
      mebibytes,
      seconds,
      rssBeforeMiB: rssBefore / MIB,
      peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MIB,
    };
  } finally {
    await test.cleanup();
  }
}

if (
  process.argv[1] !== undefined &&
  import.meta.url.endsWith(process.argv[1].replace(/^.*\//, "/"))
) {
  const mebibytes = Number(process.argv[2] ?? 1024);
  process.stdout.write(`${JSON.stringify(await probeUpload(mebibytes))}\n`);
}
