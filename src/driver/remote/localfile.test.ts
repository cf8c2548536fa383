// Protocol 1.1's LocalFile: a driver whose content lies in local files names them, and Berth's
// copyTo reads them itself; without them (or from a driver that does not say) it streams.
// Protocol 1.2's local writes: past its first MiB, a writer of a driver whose files are local asks
// for the writer's file and Berth appends to it itself; a file Berth must not write (outside the
// driver's declared root, through a symbolic link, another size) is refused and the content is
// streamed instead; a driver that does not lend (or an older one) is streamed to as before.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { buffer } from "node:stream/consumers";
import { after, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { DriverBase } from "../base.js";
import type { FileWriter, StorageDriver } from "../driver.js";
import { createDriver } from "../index.js";
import { driverSockets, fixedConnection } from "../../testing/driver-sockets.js";
import { RemoteDriver } from "./index.js";

const sockets = driverSockets("berth-localfile-");
/** A filesystem driver served on a socket, and a RemoteDriver and raw client of it. */
async function served(name: string, localFiles?: boolean) {
  const { root, driver } = await filesystem(name);
  return { root, driver, ...(await serve(name, driver, localFiles, root)) };
}

async function filesystem(name: string): Promise<{ root: string; driver: DriverBase }> {
  const root = join(sockets.scratch, name);
  return { root, driver: await createDriver("filesystem", { rootdirectory: root }) };
}

/**
 * `driver` served on a socket, a RemoteDriver of it and its LocalFile call; `localRoot` is what
 * the connection says the driver declared (as DriverProcess takes it from Version), undefined for
 * a driver without local writes.
 */
async function serve(
  name: string,
  driver: StorageDriver,
  localFiles: boolean | undefined,
  localRoot: string | undefined,
) {
  const client = await sockets.serve(name, driver, localFiles === undefined ? {} : { localFiles });
  const connection = fixedConnection(client, { localRoot });
  const localFile = (path: string) =>
    new Promise<{ file: string; size: number }>((resolve, reject) => {
      client.LocalFile({ path }, (error: Error | null, reply: { file: string; size: number }) =>
        error ? reject(error) : resolve(reply),
      );
    });
  return { remote: new RemoteDriver(name, connection, 10_000), localFile };
}

async function copied(
  remote: RemoteDriver,
  path: string,
  offset: number,
  length?: number,
): Promise<Buffer> {
  const sink = new PassThrough();
  const body = buffer(sink);
  await remote.copyTo(path, sink, offset, length);
  sink.end();
  return body;
}

describe("LocalFile", () => {
  it("names the file and size of stored content, none for a directory, NOT_FOUND for nothing", async () => {
    const { root, driver, localFile } = await served("named");
    const content = randomBytes(5000);
    await driver.putContent("/a/b/data", content);
    const reply = await localFile("/a/b/data");
    assert.equal(reply.file, join(root, "a/b/data"));
    assert.equal(Number(reply.size), 5000);
    assert.equal((await localFile("/a/b")).file, "");
    await assert.rejects(localFile("/a/missing"), { code: grpc.status.NOT_FOUND });
    await assert.rejects(localFile("/a/../../etc/passwd"), { code: grpc.status.INVALID_ARGUMENT });
  });

  it("names no file when the server is told not to", async () => {
    const { driver, localFile } = await served("unnamed", false);
    await driver.putContent("/a/data", Buffer.from("x"));
    assert.equal((await localFile("/a/data")).file, "");
  });

  for (const localFiles of [true, false]) {
    it(`copyTo gives the content and its ranges (local files ${localFiles ? "given" : "not given"})`, async () => {
      const { driver, remote } = await served(`copy-${localFiles}`, localFiles);
      const content = randomBytes(3 * 1024 * 1024 + 11);
      await driver.putContent("/blob/data", content);
      assert.ok((await copied(remote, "/blob/data", 0)).equals(content));
      assert.ok(
        (await copied(remote, "/blob/data", 1000, 70_000)).equals(content.subarray(1000, 71_000)),
      );
      assert.ok(
        (await copied(remote, "/blob/data", content.length - 5)).equals(content.subarray(-5)),
      );
      await assert.rejects(copied(remote, "/blob/none", 0), { code: "ERR_DRIVER_PATH_NOT_FOUND" });
    });
  }
});

const MiB = 1024 * 1024;

/** Writes `content` in 64 KiB chunks (as an HTTP request body comes). */
async function writeAll(writer: FileWriter, content: Buffer): Promise<void> {
  for (let at = 0; at < content.length; at += 64 * 1024) {
    await writer.write(content.subarray(at, at + 64 * 1024));
  }
}

/** Calls of the served driver's writers' write(): content that went through the protocol. */
function writesThroughProtocol(driver: DriverBase): number {
  return driver.metrics["writer.write"]?.calls ?? 0;
}

describe("local writes", () => {
  it("a large writer writes the driver's file itself: commit, close and resume, cancel", async () => {
    const { root, driver } = await filesystem("lent");
    const { remote } = await serve("lent", driver, undefined, root);
    const content = randomBytes(5 * MiB + 123);

    const writer = await remote.writer("/blob/data", false);
    await writeAll(writer, content);
    assert.equal(writer.size, content.length);
    await writer.commit();
    assert.ok(Buffer.from(await driver.getContent("/blob/data")).equals(content));
    // The first MiB went through the protocol (in 64 KiB batches), the rest not.
    assert.equal(writesThroughProtocol(driver), 16);
    assert.equal(remote.localWritesRefused, undefined);

    // Closed (resumable) at its size, resumed (locally again), then committed.
    const first = await remote.writer("/upload/data", false);
    await writeAll(first, content.subarray(0, 3 * MiB));
    await first.close();
    assert.equal(first.size, 3 * MiB);
    const resumed = await remote.writer("/upload/data", true);
    assert.equal(resumed.size, 3 * MiB);
    await writeAll(resumed, content.subarray(3 * MiB));
    assert.equal(resumed.size, content.length);
    await resumed.commit();
    assert.ok(Buffer.from(await driver.getContent("/upload/data")).equals(content));
    assert.equal(writesThroughProtocol(driver), 16 + 16 + 16);

    // Cancelled: nothing stays, not even the writer's file.
    const cancelled = await remote.writer("/gone/data", false);
    await writeAll(cancelled, content.subarray(0, 2 * MiB));
    await cancelled.cancel();
    await assert.rejects(driver.stat("/gone/data"), { code: "ERR_DRIVER_PATH_NOT_FOUND" });
    await assert.rejects(readFile(join(root, "gone")), { code: "ENOENT" });
  });

  it("a writer whose caller goes away keeps what the file held when lent", async () => {
    const { driver } = await filesystem("gone-away");
    const { remote } = await serve(
      "gone-away",
      driver,
      undefined,
      join(sockets.scratch, "gone-away"),
    );
    const writer = await remote.writer("/upload/data", false);
    await writeAll(writer, randomBytes(3 * MiB));
    // The call ends without `end`, as when Berth's process dies.
    (writer as unknown as { call: grpc.ClientDuplexStream<unknown, unknown> }).call.cancel();
    after(() => writer.cancel().catch(() => {}));
    let resumed: FileWriter | undefined;
    for (let i = 0; i < 100 && resumed === undefined; i++) {
      resumed = await driver.writer("/upload/data", true).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return undefined;
      });
    }
    assert.ok(resumed !== undefined, "the writer was closed by the server");
    assert.equal(resumed.size, MiB);
    await resumed.cancel();
  });

  it("small writers and drivers without local files are streamed as before", async () => {
    const { root, driver } = await filesystem("streamed");
    const content = randomBytes(3 * MiB);
    // A driver that declares no local root (an older one, or on another machine).
    const { remote: old } = await serve("streamed", driver, undefined, undefined);
    const writer = await old.writer("/a/data", false);
    await writeAll(writer, content);
    await writer.commit();
    assert.ok(Buffer.from(await driver.getContent("/a/data")).equals(content));
    assert.equal(writesThroughProtocol(driver), 16 + 2);
    // A small writer never asks.
    const { remote } = await serve("streamed-small", driver, undefined, root);
    const small = await remote.writer("/b/data", false);
    await small.write(content.subarray(0, 4096));
    await small.commit();
    assert.equal(writesThroughProtocol(driver), 16 + 2 + 1);
    assert.equal(remote.localWritesRefused, undefined);
  });

  describe("a lent file Berth must not write is refused; the content is streamed", () => {
    /**
     * A filesystem driver whose writers lend `lent(realFile)` instead of their own file: a
     * misbehaving driver, or a tree someone planted links in.
     */
    async function lying(name: string, lent: (file: string) => Promise<string>) {
      const { root, driver } = await filesystem(name);
      const inner = driver.inner as StorageDriver & {
        writer(path: string, append: boolean): Promise<FileWriter>;
      };
      const writer = inner.writer.bind(inner);
      inner.writer = async (path, append) => {
        const real = (await writer(path, append)) as FileWriter & {
          lendFile(): Promise<{ file: string; size: number }>;
        };
        const lendFile = real.lendFile.bind(real);
        real.lendFile = async () => {
          const offer = await lendFile();
          return { file: await lent(offer.file), size: offer.size };
        };
        return real;
      };
      return { root, driver, remote: (await serve(name, driver, undefined, root)).remote };
    }

    /** A file outside every driver's root that must keep its content. */
    async function victim(name: string): Promise<string> {
      const dir = join(sockets.scratch, `victims-${name}`);
      await mkdir(dir, { recursive: true });
      const file = join(dir, "victim");
      await writeFile(file, Buffer.alloc(MiB, 0x61));
      return file;
    }

    const cases: [string, RegExp, (name: string, root: string) => Promise<string>][] = [
      ["outside the declared root", /is not below the driver's local root/, (name) => victim(name)],
      [
        "named with '..' out of the root",
        /is not below the driver's local root/,
        async (name, root) => {
          await victim(name);
          return `${root}/../victims-${name}/victim`;
        },
      ],
      [
        "a symbolic link to a file outside",
        /cannot be opened/,
        async (name, root) => {
          const link = join(root, "link");
          await symlink(await victim(name), link);
          return link;
        },
      ],
      [
        "below a directory that is a symbolic link to outside",
        /a symbolic link/,
        async (name, root) => {
          const file = await victim(name);
          const link = join(root, "linked-dir");
          await symlink(join(file, ".."), link);
          return join(link, "victim");
        },
      ],
      [
        "a FIFO (whose open would wait for a reader)",
        /cannot be opened/,
        async (name, root) => {
          await victim(name);
          const fifo = join(root, "fifo");
          execFileSync("mkfifo", [fifo]);
          return fifo;
        },
      ],
    ];
    for (const [title, reason, make] of cases) {
      it(title, async () => {
        const name = `refused-${cases.findIndex((entry) => entry[0] === title)}`;
        const made = { file: "" };
        const { root, driver, remote } = await lying(name, async () => made.file);
        made.file = await make(name, root);
        const content = randomBytes(3 * MiB);
        const writer = await remote.writer("/blob/data", false);
        await writeAll(writer, content);
        await writer.commit();
        assert.ok(Buffer.from(await driver.getContent("/blob/data")).equals(content));
        assert.match(remote.localWritesRefused ?? "", reason);
        const untouched = await readFile(join(sockets.scratch, `victims-${name}`, "victim"));
        assert.ok(untouched.equals(Buffer.alloc(MiB, 0x61)), "the file outside was not written");
        // Local writes stop for this driver: the next writer does not ask.
        assert.equal(remote.localRoot, undefined);
      });
    }
  });
});
