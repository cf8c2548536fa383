// Protocol 1.1's LocalFile: a driver whose content lies in local files names them, and Berth's
// copyTo reads them itself; without them (or from a driver that does not say) it streams.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { buffer } from "node:stream/consumers";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { createDriver } from "../index.js";
import type { DriverConnection, ServiceClient } from "./client.js";
import { RemoteDriver, serveDriver, type DriverServer } from "./index.js";
import { CHANNEL_OPTIONS, driverService } from "./protocol.js";

let scratch: string;
const servers: DriverServer[] = [];
const clients: ServiceClient[] = [];

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "berth-localfile-"));
});

after(async () => {
  for (const client of clients) client.close();
  await Promise.all(servers.map((server) => server.close()));
  await rm(scratch, { recursive: true, force: true });
});

/** A filesystem driver served on a socket, and a RemoteDriver and raw client of it. */
async function served(name: string, localFiles?: boolean) {
  const root = join(scratch, name);
  const driver = await createDriver("filesystem", { rootdirectory: root });
  const socket = join(scratch, `${name}.sock`);
  servers.push(
    await serveDriver(driver, { socket, ...(localFiles === undefined ? {} : { localFiles }) }),
  );
  const Service = driverService();
  const client = new Service(
    `unix:${socket}`,
    grpc.credentials.createInsecure(),
    CHANNEL_OPTIONS,
  ) as unknown as ServiceClient;
  clients.push(client);
  const connection: DriverConnection = {
    client: async () => client,
    explain: async (failure) => failure.details,
    close: async () => undefined,
    pid: undefined,
    restartCount: 0,
  };
  const localFile = (path: string) =>
    new Promise<{ file: string; size: number }>((resolve, reject) => {
      client.LocalFile({ path }, (error: Error | null, reply: { file: string; size: number }) =>
        error ? reject(error) : resolve(reply),
      );
    });
  return { root, driver, remote: new RemoteDriver(name, connection, 10_000), localFile };
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
