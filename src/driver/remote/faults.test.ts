// Faults of out-of-process drivers: the process killed (SIGKILL) during a write, during a read and
// while idle; a driver that answers slowly or never says it is ready; a protocol version Berth
// cannot speak; parameters the driver refuses; an executable that is not there.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { DriverErrorCode, type FileWriter, type StorageDriver } from "../driver.js";
import { DriverBase } from "../base.js";
import { createDriver } from "../factory.js";
import { driverScripts } from "../../testing/driver-scripts.js";
import { PROTOCOL_VERSION, createRemoteDriver, type RemoteDriver } from "./index.js";

const scratch = mkdtempSync(join(tmpdir(), "berth-remote-faults-"));
const bin = driverScripts(join(scratch, "bin"), { faultfs: ["filesystem"] });
const FAULTFS = join(bin, "registry-storage-faultfs");
process.env.PATH = `${bin}:${process.env.PATH ?? ""}`;

// A driver process written in TypeScript for these tests: inmemory, where `stat` of a path
// containing "slow" and readers of such paths never answer, reporting the version in FAKE_VERSION.
const REMOTE = fileURLToPath(new URL("./index.js", import.meta.url));
const DRIVERS = fileURLToPath(new URL("../index.js", import.meta.url));
const SLOW = join(scratch, "slow-driver.mjs");
writeFileSync(
  SLOW,
  `import { serveDriverProcess } from ${JSON.stringify(REMOTE)};
import { InMemoryDriver } from ${JSON.stringify(DRIVERS)};
const never = () => new Promise(() => {});
class Slow extends InMemoryDriver {
  async stat(path) { if (path.includes("slow")) await never(); return super.stat(path); }
  async reader(path, offset, options) { if (path.includes("slow")) await never(); return super.reader(path, offset, options); }
}
await serveDriverProcess(() => new Slow(), process.argv[2], { version: process.env.FAKE_VERSION || undefined });
`,
);
const SLOW_SCRIPT = join(scratch, "registry-storage-slow");
writeFileSync(
  SLOW_SCRIPT,
  `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(SLOW)} "$1"\n`,
  { mode: 0o755 },
);
const SILENT_SCRIPT = join(scratch, "registry-storage-silent");
writeFileSync(SILENT_SCRIPT, "#!/bin/sh\nexec sleep 60\n", { mode: 0o755 });

const opened: StorageDriver[] = [];
after(async () => {
  await Promise.all(opened.map((driver) => driver.close?.() ?? Promise.resolve()));
  rmSync(scratch, { recursive: true, force: true });
});

/** The filesystem served by a process, restarted quickly, wrapped as the factory wraps it. */
async function faultfs(root: string): Promise<{ driver: DriverBase; remote: RemoteDriver }> {
  const remote = await createRemoteDriver(
    "faultfs",
    FAULTFS,
    { rootdirectory: root },
    {
      restartDelayMs: 50,
      log: () => {},
    },
  );
  const driver = new DriverBase(remote);
  opened.push(driver);
  return { driver, remote };
}

/** Kills the driver's process with SIGKILL and returns its pid. */
function kill(remote: RemoteDriver): number {
  const pid = remote.pid;
  assert.ok(pid !== undefined, "the driver process runs");
  process.kill(pid, "SIGKILL");
  return pid;
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  assert.fail("expected a rejection");
}

/** Writes `chunk` until a write fails (at most 1000 times); the failure. */
async function writeUntilFailure(
  writer: FileWriter,
  chunk: Buffer,
): Promise<Error & { code?: string }> {
  for (let i = 0; i < 1000; i++) {
    const error = await writer.write(chunk).then(
      () => undefined,
      (caught: Error) => caught,
    );
    if (error !== undefined) return error;
  }
  assert.fail("no write failed after the kill");
}

function assertKilledError(error: Error & { code?: string }, pid: number): void {
  assert.equal(error.code, DriverErrorCode.Backend, String(error));
  const text = `${error.message} ${(error.cause as Error | undefined)?.message ?? ""}`;
  assert.match(text, /registry-storage-faultfs/, text);
  assert.match(
    text,
    new RegExp(`pid ${pid}\\) was killed by SIGKILL; it is being restarted`),
    text,
  );
}

describe("out-of-process driver faults", () => {
  it("killed during a write: the write fails saying so, the process restarts, closed uploads resume", async () => {
    const { driver, remote } = await faultfs(join(scratch, "write"));
    const chunk = Buffer.alloc(256 * 1024, 1);
    // An upload closed earlier, waiting to be resumed.
    const earlier = await driver.writer("/uploads/a/data", false);
    await earlier.write(chunk);
    await earlier.close();

    const writer: FileWriter = await driver.writer("/uploads/b/data", false);
    await writer.write(chunk);
    const pid = kill(remote);
    const error = await writeUntilFailure(writer, chunk);
    assertKilledError(error, pid);

    // The next calls wait for the new process; the upload closed before resumes where it was.
    const resumed = await driver.writer("/uploads/a/data", true);
    assert.equal(resumed.size, chunk.length);
    await resumed.write(chunk);
    await resumed.commit();
    assert.equal((await driver.stat("/uploads/a/data")).size, 2 * chunk.length);
    assert.notEqual(remote.pid, pid, "a new process");
    assert.ok(remote.restartCount >= 1);
  });

  it("killed during a local write (Berth writing the driver's file): the write fails saying so", async () => {
    const { driver, remote } = await faultfs(join(scratch, "local-write"));
    const chunk = Buffer.alloc(256 * 1024, 2);
    const writer: FileWriter = await driver.writer("/uploads/c/data", false);
    // Past its first MiB the writer writes the driver's file itself.
    for (let i = 0; i < 8; i++) await writer.write(chunk);
    assert.equal(remote.localWritesRefused, undefined);
    const pid = kill(remote);
    const error = await writeUntilFailure(writer, chunk);
    assertKilledError(error, pid);
    await assert.rejects(writer.cancel());
    // The restarted driver keeps nothing of the unacknowledged writer as a resumable upload
    // beyond what it had received itself.
    const resumed = await driver.writer("/uploads/c/data", true).catch(() => undefined);
    if (resumed !== undefined) {
      assert.ok(resumed.size <= 1024 * 1024, `resumed at ${resumed.size}`);
      await resumed.cancel();
    }
  });

  it("killed during a read: the stream fails saying so, and reading again from the offset works", async () => {
    const { driver, remote } = await faultfs(join(scratch, "read"));
    const content = Buffer.alloc(64 * 1024 * 1024);
    for (let i = 0; i < content.length; i += 4096) content.writeUInt32BE(i, i);
    const writer = await driver.writer("/blob", false);
    await writer.write(content);
    await writer.commit();

    const stream = await driver.reader("/blob", 0);
    const received: Buffer[] = [];
    let pid = 0;
    const error = await rejection(
      (async () => {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          received.push(chunk);
          if (pid === 0) pid = kill(remote);
        }
      })(),
    );
    assertKilledError(error, pid);
    const got = Buffer.concat(received);
    assert.ok(got.length < content.length, "the read stopped before the end");
    assert.ok(got.equals(content.subarray(0, got.length)), "what arrived is the content's start");

    const rest = await driver.reader("/blob", got.length);
    const tail: Buffer[] = [];
    for await (const chunk of rest as AsyncIterable<Buffer>) tail.push(chunk);
    assert.ok(Buffer.concat([got, ...tail]).equals(content), "the whole content, resumed");
  });

  it("killed while idle: the next call waits for the restart and finds the content", async () => {
    const { driver, remote } = await faultfs(join(scratch, "idle"));
    await driver.putContent("/kept", Buffer.from("still here"));
    const pid = kill(remote);
    // Idle: nothing was in flight; Berth notices the death and starts another process.
    while (remote.pid === pid) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(Buffer.from(await driver.getContent("/kept")).toString(), "still here");
    assert.notEqual(remote.pid, pid);
  });

  it("killed with calls in flight on the call stream: they fail saying so, the next ones go on", async () => {
    const remote = await createRemoteDriver(
      "slow",
      SLOW_SCRIPT,
      {},
      { restartDelayMs: 50, log: () => {} },
    );
    const driver = new DriverBase(remote);
    opened.push(driver);
    await driver.putContent("/kept", Buffer.from("kept"));
    // Calls the driver never answers, in flight on the stream when the process dies.
    const calls = [1, 2, 3, 4].map((n) => rejection(driver.stat(`/slow/${n}`)));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const pid = remote.pid!;
    process.kill(pid, "SIGKILL");
    for (const error of await Promise.all(calls)) {
      assert.equal(error.code, DriverErrorCode.Backend, String(error));
      const text = `${error.message} ${(error.cause as Error | undefined)?.message ?? ""}`;
      assert.match(
        text,
        new RegExp(`registry-storage-slow \\(pid ${pid}\\) was killed by SIGKILL`),
        text,
      );
    }
    // A new process, and a new stream to it (its content is gone: inmemory).
    await assert.rejects(driver.stat("/kept"), { code: DriverErrorCode.PathNotFound });
    await driver.putContent("/again", Buffer.from("again"));
    assert.equal(Buffer.from(await driver.getContent("/again")).toString(), "again");
    assert.notEqual(remote.pid, pid);
  });

  it("a driver that does not answer: calls time out with a clear error, others go on", async () => {
    const remote = await createRemoteDriver(
      "slow",
      SLOW_SCRIPT,
      {},
      {
        callTimeoutMs: 500,
        log: () => {},
      },
    );
    const driver = new DriverBase(remote);
    opened.push(driver);
    await driver.putContent("/slow", Buffer.from("x"));
    // Both calls time out together: each is awaited through rejection() from the start, so
    // neither rejects unhandled while the test awaits the other (the reader's did, in 2 full runs).
    const calls = [rejection(driver.stat("/slow")), rejection(driver.reader("/slow", 0))];
    for (const call of calls) {
      const error = await call;
      assert.equal(error.code, DriverErrorCode.Backend);
      assert.match((error.cause as Error).message, /did not answer within 500 ms/);
    }
    const other = await rejection(driver.stat("/fast-enough"));
    assert.equal(other.code, DriverErrorCode.PathNotFound, "another call is answered");
  });

  it("a driver that never says it is ready is stopped after the start timeout", async () => {
    const error = await rejection(
      createRemoteDriver("silent", SILENT_SCRIPT, {}, { startTimeoutMs: 300, log: () => {} }),
    );
    assert.equal(error.code, DriverErrorCode.InvalidStorageDriver);
    assert.match(error.message, /did not say it was ready within 300 ms/);
    assert.ok(error.message.includes(SILENT_SCRIPT), error.message);
  });

  it("a different major version is refused, naming both versions and the executable", async () => {
    process.env.FAKE_VERSION = "2.0";
    try {
      const error = await rejection(createRemoteDriver("slow", SLOW_SCRIPT, {}, { log: () => {} }));
      assert.equal(error.code, DriverErrorCode.InvalidStorageDriver);
      assert.match(
        error.message,
        new RegExp(`protocol version 2\\.0, Berth speaks ${PROTOCOL_VERSION.replace(".", "\\.")}`),
      );
      assert.ok(error.message.includes(SLOW_SCRIPT), error.message);
    } finally {
      delete process.env.FAKE_VERSION;
    }
    // A later minor, and the 1.0 that drivers written before LocalFile (1.1) report, are accepted.
    for (const version of ["1.7", "1.0"]) {
      process.env.FAKE_VERSION = version;
      try {
        const accepted = await createRemoteDriver("slow", SLOW_SCRIPT, {}, { log: () => {} });
        await accepted.close();
      } finally {
        delete process.env.FAKE_VERSION;
      }
    }
  });

  it("parameters the driver refuses come back as its error, with its message", async () => {
    const file = join(scratch, "a-file");
    writeFileSync(file, "not a directory");
    const error = (await rejection(
      createDriver("faultfs", { rootdirectory: join(file, "below") }),
    )) as Error & { code?: string; parameter?: string };
    assert.equal(error.code, DriverErrorCode.InvalidParameter);
    assert.equal(error.parameter, "rootdirectory");
    assert.match(
      error.message,
      /^faultfs: parameter rootdirectory: .*a-file\/below.* cannot be created/,
    );
  });

  it("an unknown driver with no executable names the executable looked for", async () => {
    const error = await rejection(createDriver("nosuchdriver", {}));
    assert.equal(error.code, DriverErrorCode.InvalidStorageDriver);
    assert.match(error.message, /no executable registry-storage-nosuchdriver on PATH/);
  });

  it("close stops the process", async () => {
    const { driver, remote } = await faultfs(join(scratch, "close"));
    const pid = remote.pid!;
    await driver.close();
    assert.throws(() => process.kill(pid, 0), "the process is gone");
    assert.equal((await rejection(driver.stat("/"))).code, DriverErrorCode.InvalidStorageDriver);
  });
});
