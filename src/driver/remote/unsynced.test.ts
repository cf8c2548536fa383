// Protocol 1.6: what the storage layer tells a driver it need not sync crosses the protocol.
// putContentUnsynced (an upload's `startedat`) reaches the driver's own putContentUnsynced, and a
// commit's movedNext (an upload's data, moved into `blobs/` next) reaches the driver's commit, for
// every kind of writer: a small one (the call stream's `write` call), a streamed one (a Writer
// rpc) and one whose file Berth wrote itself (local writes). Before, both were dropped, and a
// 4 KiB push through `berth driver-server filesystem` made 7 fsyncs where in process it makes 4.

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DriverBase } from "../base.js";
import type {
  CallOptions,
  CommitOptions,
  FileWriter,
  StorageDriver,
  StoragePath,
} from "../driver.js";
import { FilesystemDriver } from "../filesystem/index.js";
import { InMemoryDriver } from "../inmemory/index.js";
import { driverSockets, fixedConnection } from "../../testing/driver-sockets.js";
import { RemoteDriver } from "./index.js";

/** What reached a served driver: its puts, unsynced puts and commits (with their movedNext). */
interface Record {
  puts: string[];
  unsynced: string[];
  commits: { path: string; movedNext: boolean }[];
}

/** Makes `driver` record into `record`, keeping its own behaviour (and its writers' lending). */
function recording<T extends StorageDriver>(driver: T, record: Record): T {
  const putContent = driver.putContent.bind(driver);
  driver.putContent = (path, content) => {
    record.puts.push(path);
    return putContent(path, content);
  };
  driver.putContentUnsynced = (path, content) => {
    record.unsynced.push(path);
    return putContent(path, content);
  };
  const writer = driver.writer.bind(driver);
  driver.writer = async (path: StoragePath, append: boolean, options?: CallOptions) => {
    const opened: FileWriter = await writer(path, append, options);
    const commit = opened.commit.bind(opened);
    opened.commit = (commitOptions?: CommitOptions) => {
      record.commits.push({ path, movedNext: commitOptions?.movedNext === true });
      return commit(commitOptions);
    };
    return opened;
  };
  return driver;
}

const sockets = driverSockets("berth-unsynced-");

async function served(
  name: string,
  driver: StorageDriver,
  options: { callStream: boolean; localRoot?: string },
) {
  const record: Record = { puts: [], unsynced: [], commits: [] };
  const client = await sockets.serve(name, recording(driver, record));
  const connection = fixedConnection(client, {
    callStream: options.callStream,
    localRoot: options.localRoot,
  });
  const remote = new RemoteDriver(name, connection, 120_000);
  return { record, remote, driver: new DriverBase(remote) };
}

/** Writes `size` bytes in 64 KiB chunks and commits with `options`. */
async function writeAndCommit(
  driver: StorageDriver,
  path: StoragePath,
  size: number,
  options?: CommitOptions,
): Promise<void> {
  const writer = await driver.writer(path, false);
  for (let at = 0; at < size; at += 65536) {
    await writer.write(Buffer.alloc(Math.min(65536, size - at), at / 65536));
  }
  await writer.commit(options);
}

describe("unsynced puts and movedNext commits (protocol 1.6)", () => {
  it("putContentUnsynced reaches the driver's own, on the call stream and as an rpc", async () => {
    for (const callStream of [true, false]) {
      const { record, remote, driver } = await served(`put-${callStream}`, new InMemoryDriver(), {
        callStream,
      });
      assert.equal(typeof remote.putContentUnsynced, "function");
      await driver.putContentUnsynced("/uploads/u/startedat", Buffer.from("2026-11-29T14:00:00Z"));
      await driver.putContent("/uploads/u/other", Buffer.from("x"));
      assert.deepEqual(record.unsynced, ["/uploads/u/startedat"], `callStream ${callStream}`);
      assert.deepEqual(record.puts, ["/uploads/u/other"]);
      assert.equal(
        Buffer.from(await driver.getContent("/uploads/u/startedat")).toString(),
        "2026-11-29T14:00:00Z",
      );
    }
  });

  it("a commit's movedNext reaches the driver's commit, small and streamed", async () => {
    for (const callStream of [true, false]) {
      const { record, driver } = await served(`commit-${callStream}`, new InMemoryDriver(), {
        callStream,
      });
      await writeAndCommit(driver, "/small/moved", 4096, { movedNext: true });
      await writeAndCommit(driver, "/small/kept", 4096);
      await writeAndCommit(driver, "/large/moved", 3 * 65536 + 5, { movedNext: true });
      await writeAndCommit(driver, "/large/kept", 3 * 65536 + 5);
      assert.deepEqual(
        record.commits,
        [
          { path: "/small/moved", movedNext: true },
          { path: "/small/kept", movedNext: false },
          { path: "/large/moved", movedNext: true },
          { path: "/large/kept", movedNext: false },
        ],
        `callStream ${callStream}`,
      );
      assert.equal((await driver.stat("/large/moved")).size, 3 * 65536 + 5);
    }
  });

  it("a commit's movedNext reaches the driver when Berth wrote the lent file", async () => {
    const root = join(sockets.scratch, "fs-root");
    await mkdir(root);
    const { record, remote, driver } = await served("commit-local", new FilesystemDriver(root), {
      callStream: true,
      localRoot: root,
    });
    const size = 3 * 1024 * 1024 + 7;
    await writeAndCommit(driver, "/large/moved", size, { movedNext: true });
    await writeAndCommit(driver, "/large/kept", size);
    assert.equal(remote.localWritesRefused, undefined, "Berth wrote the lent files");
    assert.deepEqual(record.commits, [
      { path: "/large/moved", movedNext: true },
      { path: "/large/kept", movedNext: false },
    ]);
    assert.equal((await driver.stat("/large/moved")).size, size);
  });
});
