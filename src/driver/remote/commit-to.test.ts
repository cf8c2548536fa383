// Protocol 1.7: FileWriter.commitTo crosses the protocol as a commit's `commit_to`, for every kind
// of writer (a small one's `write` call on the call stream, a Writer rpc, and one whose file Berth
// wrote itself), served with the driver's own commitTo, or with a commit and a move in the driver
// process for a driver without one. Before, a remote writer had no commitTo, so the storage layer
// committed and then sent a Move: a call more per push than in process. An older driver (1.0-1.6)
// is offered no commitTo and works as before. The shared suite's commitTo test runs over the
// protocol in remote.test.ts (the filesystem's own commitTo, and the fallback for inmemory's).
// Protocol 1.8 adds `if_absent` (FileWriter.commitToIfAbsent): a commit that keeps a file stored at
// the destination, answered with `kept`, where the storage layer sent a Stat first.

import assert from "node:assert/strict";
import { mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DriverBase } from "../base.js";
import {
  DriverErrorCode,
  type CallOptions,
  type FileWriter,
  type StorageDriver,
  type StoragePath,
} from "../driver.js";
import { FilesystemDriver } from "../filesystem/index.js";
import { InMemoryDriver } from "../inmemory/index.js";
import { driverSockets, fixedConnection } from "../../testing/driver-sockets.js";
import { RemoteDriver } from "./index.js";
import { PROTOCOL_VERSION } from "./protocol.js";

/** What reached a served driver: commits at the writer's path, commitTo's, and moves. */
interface Record {
  commits: string[];
  commitsTo: string[];
  moves: string[];
  /** commitToIfAbsent's, with what they answered. */
  ifAbsent?: string[];
}

/** Makes `driver` record into `record`, keeping its own behaviour (and its writers' lending). */
function recording<T extends StorageDriver>(driver: T, record: Record): T {
  const move = driver.move.bind(driver);
  driver.move = (source: StoragePath, destination: StoragePath, options?: CallOptions) => {
    record.moves.push(`${source} -> ${destination}`);
    return move(source, destination, options);
  };
  const writer = driver.writer.bind(driver);
  driver.writer = async (path: StoragePath, append: boolean, options?: CallOptions) => {
    const opened: FileWriter = await writer(path, append, options);
    const commit = opened.commit.bind(opened);
    opened.commit = (commitOptions) => {
      record.commits.push(path);
      return commit(commitOptions);
    };
    const commitTo = opened.commitTo?.bind(opened);
    if (commitTo !== undefined) {
      opened.commitTo = (destination) => {
        record.commitsTo.push(`${path} -> ${destination}`);
        return commitTo(destination);
      };
    }
    const commitToIfAbsent = opened.commitToIfAbsent?.bind(opened);
    if (commitToIfAbsent !== undefined) {
      opened.commitToIfAbsent = async (destination) => {
        const published = await commitToIfAbsent(destination);
        (record.ifAbsent ??= []).push(`${path} -> ${destination}: ${published}`);
        return published;
      };
    }
    return opened;
  };
  return driver;
}

const sockets = driverSockets("berth-commit-to-");

async function served(
  name: string,
  driver: StorageDriver,
  options: { callStream: boolean; localRoot?: string; version?: string },
) {
  const record: Record = { commits: [], commitsTo: [], moves: [] };
  const version = options.version ?? PROTOCOL_VERSION;
  const client = await sockets.serve(name, recording(driver, record), { version });
  const connection = fixedConnection(client, {
    callStream: options.callStream,
    localRoot: options.localRoot,
    commitTo: Number(version.split(".")[1]) >= 7,
    commitToIfAbsent: Number(version.split(".")[1]) >= 8,
  });
  const remote = new RemoteDriver(name, connection, 120_000);
  return { record, remote, driver: new DriverBase(remote) };
}

/** A fresh directory below the scratch directory, for a filesystem driver's root. */
async function freshRoot(name: string): Promise<string> {
  const root = join(sockets.scratch, name);
  await mkdir(root);
  return root;
}

/** A writer at `path` given `size` bytes in 64 KiB chunks (not ended). */
async function written(driver: StorageDriver, path: StoragePath, size: number) {
  const writer = await driver.writer(path, false);
  for (let at = 0; at < size; at += 65536) {
    await writer.write(Buffer.alloc(Math.min(65536, size - at), at / 65536 + 1));
  }
  return writer;
}

/** The bytes `written` gives a writer of `size`. */
function expected(size: number): Buffer {
  const content = Buffer.alloc(size);
  for (let at = 0; at < size; at += 65536) {
    content.fill(at / 65536 + 1, at, Math.min(size, at + 65536));
  }
  return content;
}

/** A small writer (the call stream's `write`), one grown past 64 KiB (a Writer rpc), one lent. */
const SIZES = { small: 4096, streamed: 3 * 65536 + 5, lent: 3 * 1024 * 1024 + 7 };

describe("commitTo over the protocol (1.7)", () => {
  it("reaches the driver's own commitTo from every kind of writer: no commit, no move", async () => {
    for (const callStream of [true, false]) {
      const root = await freshRoot(`own-${callStream}`);
      const { record, remote, driver } = await served(
        `own-${callStream}`,
        new FilesystemDriver(root),
        { callStream, localRoot: root },
      );
      for (const [kind, size] of Object.entries(SIZES)) {
        const writer = await written(driver, `/uploads/${kind}/data`, size);
        assert.equal(typeof writer.commitTo, "function", `${kind}: offered`);
        await writer.commitTo!(`/blobs/${kind}/data`);
        assert.deepEqual(
          Buffer.from(await driver.getContent(`/blobs/${kind}/data`)),
          expected(size),
          `${kind}, callStream ${callStream}`,
        );
        await assert.rejects(driver.stat(`/uploads/${kind}/data`), {
          code: DriverErrorCode.PathNotFound,
        });
      }
      assert.equal(remote.localWritesRefused, undefined, "Berth wrote the lent file");
      assert.deepEqual(record, {
        commits: [],
        commitsTo: Object.keys(SIZES).map((kind) => `/uploads/${kind}/data -> /blobs/${kind}/data`),
        moves: [],
      });
      const files = await readdir(root, { recursive: true });
      assert.deepEqual(
        files.filter((file) => file.includes("~")),
        [],
        "writer files left",
      );
    }
  });

  it("a driver without commitTo: the driver process commits and moves", async () => {
    for (const callStream of [true, false]) {
      const { record, driver } = await served(`fallback-${callStream}`, new InMemoryDriver(), {
        callStream,
      });
      for (const kind of ["small", "streamed"] as const) {
        const writer = await written(driver, `/uploads/${kind}/data`, SIZES[kind]);
        await writer.commitTo!(`/blobs/${kind}/data`);
        assert.equal((await driver.stat(`/blobs/${kind}/data`)).size, SIZES[kind]);
        await assert.rejects(driver.stat(`/uploads/${kind}/data`), {
          code: DriverErrorCode.PathNotFound,
        });
      }
      assert.deepEqual(record, {
        commits: ["/uploads/small/data", "/uploads/streamed/data"],
        commitsTo: [],
        moves: [
          "/uploads/small/data -> /blobs/small/data",
          "/uploads/streamed/data -> /blobs/streamed/data",
        ],
      });
    }
  });

  it("an older driver is offered no commitTo: its writers commit as before", async () => {
    for (const version of ["1.6", "1.0"]) {
      const root = await freshRoot(`old-${version}`);
      const { record, driver } = await served(`old-${version}`, new FilesystemDriver(root), {
        callStream: version === "1.6",
        version,
      });
      for (const [kind, size] of Object.entries(SIZES)) {
        const writer = await written(driver, `/uploads/${kind}/data`, size);
        assert.equal("commitTo" in writer && writer.commitTo !== undefined, false, `${kind}`);
        await writer.commit();
      }
      assert.equal(record.commits.length, 3);
      assert.deepEqual(record.commitsTo, []);
    }
  });

  it("the driver refuses a destination outside the grammar: nothing published, the writer kept", async () => {
    await mkdir(join(sockets.scratch, "checked", "root"), { recursive: true });
    for (const [name, make] of [
      ["own", () => new FilesystemDriver(join(sockets.scratch, "checked", "root"))],
      ["fallback", () => new InMemoryDriver()],
    ] as const) {
      for (const callStream of [true, false]) {
        const { remote, driver } = await served(`checked-${name}-${callStream}`, make(), {
          callStream,
        });
        for (const kind of ["small", "streamed"] as const) {
          const path = `/uploads/${kind}/data`;
          // Past Berth's own check (DriverBase's), straight to the driver.
          const writer = await written(remote, path, SIZES[kind]);
          await assert.rejects(writer.commitTo!("/blobs/../../escaped"), {
            code: DriverErrorCode.InvalidPath,
          });
          const resumed = await driver.writer(path, true);
          assert.equal(resumed.size, SIZES[kind], `${name} ${kind}: what arrived is kept`);
          await resumed.cancel();
        }
      }
    }
    const entries = await readdir(join(sockets.scratch, "checked"));
    assert.deepEqual(entries, ["root"], "nothing written outside the root");
  });

  it("commit_to with another action than COMMIT is refused", async () => {
    const { remote, driver } = await served("close-to", new InMemoryDriver(), {
      callStream: true,
    });
    await assert.rejects(
      remote.writeWhole("/uploads/u/data", false, Buffer.from("x"), "CLOSE", "writer.close", {
        commitTo: "/blobs/u/data",
      }),
      { code: DriverErrorCode.WriterClosed },
    );
    await assert.rejects(driver.stat("/blobs/u/data"), { code: DriverErrorCode.PathNotFound });
  });

  it("a commitTo that fails leaves nothing at the destination", async () => {
    const root = await freshRoot("failing");
    const { driver } = await served("failing", new FilesystemDriver(root), {
      callStream: true,
      localRoot: root,
    });
    // A file where the destination's directory would be: the rename cannot happen.
    await driver.putContent("/blobs/taken", Buffer.from("a file"));
    for (const [kind, size] of Object.entries(SIZES)) {
      const writer = await written(driver, `/uploads/${kind}/data`, size);
      await assert.rejects(writer.commitTo!("/blobs/taken/data"));
      await assert.rejects(driver.stat("/blobs/taken/data"));
      assert.equal(Buffer.from(await driver.getContent("/blobs/taken")).toString(), "a file");
    }
  });

  it("a start-up sweep in the driver process while a writer commits to blobs/ leaves its bytes alone", async () => {
    const root = await freshRoot("sweep");
    const fs = new FilesystemDriver(root);
    const publishAt = fs.publishAt.bind(fs);
    // Another driver instance's sweep (a restarted driver process's) runs just before the rename.
    fs.publishAt = async (...args) => {
      await new FilesystemDriver(root).startSweep();
      return publishAt(...args);
    };
    const { driver } = await served("sweep", fs, { callStream: true, localRoot: root });
    for (const [kind, size] of Object.entries(SIZES)) {
      const writer = await written(driver, `/uploads/${kind}/data`, size);
      await writer.commitTo!(`/blobs/${kind}/data`);
      assert.deepEqual(
        Buffer.from(await driver.getContent(`/blobs/${kind}/data`)),
        expected(size),
        kind,
      );
    }
  });
});

describe("commitToIfAbsent over the protocol (1.8)", () => {
  it("reaches the driver's own commitToIfAbsent from every kind of writer: new bytes published, a stored file kept", async () => {
    for (const callStream of [true, false]) {
      const root = await freshRoot(`if-absent-${callStream}`);
      const { record, remote, driver } = await served(
        `if-absent-${callStream}`,
        new FilesystemDriver(root),
        { callStream, localRoot: root },
      );
      for (const [kind, size] of Object.entries(SIZES)) {
        const destination = `/blobs/${kind}/data`;
        const first = await written(driver, `/uploads/${kind}/data`, size);
        assert.equal(typeof first.commitToIfAbsent, "function", `${kind}: offered`);
        assert.equal(await first.commitToIfAbsent!(destination), true, `${kind}: published`);
        const inode = (await stat(join(root, destination))).ino;
        // The same size, other bytes: were it published, the content would say so.
        const second = await driver.writer(`/uploads/${kind}-again/data`, false);
        await second.write(Buffer.alloc(size, 0xee));
        assert.equal(await second.commitToIfAbsent!(destination), false, `${kind}: kept`);
        assert.equal((await stat(join(root, destination))).ino, inode, `${kind}: same file`);
        assert.deepEqual(Buffer.from(await driver.getContent(destination)), expected(size));
        for (const upload of [`/uploads/${kind}/data`, `/uploads/${kind}-again/data`]) {
          await assert.rejects(driver.stat(upload), { code: DriverErrorCode.PathNotFound });
        }
      }
      assert.equal(remote.localWritesRefused, undefined, "Berth wrote the lent file");
      assert.deepEqual(
        record.ifAbsent,
        Object.keys(SIZES).flatMap((kind) => [
          `/uploads/${kind}/data -> /blobs/${kind}/data: true`,
          `/uploads/${kind}-again/data -> /blobs/${kind}/data: false`,
        ]),
      );
      assert.deepEqual(record.commits, []);
      assert.deepEqual(record.moves, []);
      const files = await readdir(root, { recursive: true });
      assert.deepEqual(
        files.filter((file) => file.includes("~")),
        [],
        "writer files left",
      );
    }
  });

  it("a driver without commitToIfAbsent: the driver process looks first, then commits and moves", async () => {
    for (const callStream of [true, false]) {
      const { record, driver } = await served(
        `if-absent-fallback-${callStream}`,
        new InMemoryDriver(),
        {
          callStream,
        },
      );
      for (const kind of ["small", "streamed"] as const) {
        const destination = `/blobs/${kind}/data`;
        const first = await written(driver, `/uploads/${kind}/data`, SIZES[kind]);
        assert.equal(await first.commitToIfAbsent!(destination), true);
        const second = await driver.writer(`/uploads/${kind}-again/data`, false);
        await second.write(Buffer.alloc(SIZES[kind], 0xee));
        assert.equal(await second.commitToIfAbsent!(destination), false);
        assert.deepEqual(Buffer.from(await driver.getContent(destination)), expected(SIZES[kind]));
        await assert.rejects(driver.stat(`/uploads/${kind}-again/data`), {
          code: DriverErrorCode.PathNotFound,
        });
      }
      assert.deepEqual(record.moves, [
        "/uploads/small/data -> /blobs/small/data",
        "/uploads/streamed/data -> /blobs/streamed/data",
      ]);
    }
  });

  it("a 1.7 driver is offered commitTo and no commitToIfAbsent", async () => {
    const root = await freshRoot("if-absent-old");
    const { driver } = await served("if-absent-old", new FilesystemDriver(root), {
      callStream: true,
      version: "1.7",
    });
    const writer = await written(driver, "/uploads/old/data", SIZES.small);
    assert.equal(typeof writer.commitTo, "function");
    assert.equal("commitToIfAbsent" in writer && writer.commitToIfAbsent !== undefined, false);
    await writer.cancel();
  });

  it("if_absent without commit_to is refused", async () => {
    const { remote, driver } = await served("if-absent-alone", new InMemoryDriver(), {
      callStream: true,
    });
    await assert.rejects(
      remote.writeWhole("/uploads/u/data", false, Buffer.from("x"), "COMMIT", "writer.commit", {
        ifAbsent: true,
      }),
      { code: DriverErrorCode.WriterClosed },
    );
    await assert.rejects(driver.stat("/uploads/u/data"), { code: DriverErrorCode.PathNotFound });
  });
});
