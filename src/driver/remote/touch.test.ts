// Protocol 1.4's Touch: a driver that reports 1.4 gets the contract's touch as one call (on the
// call stream, or as an rpc), served with the driver's own touch; an older driver, or one that
// answers UNIMPLEMENTED, gets putContent of no bytes, as DriverBase gives a driver without touch.
// Through `berth driver-server filesystem` the record keeps its inode (an open with O_TRUNC, not a
// rename). The Python example (1.0) passes the shared suite's touch tests through the fallback
// (python.test.ts).

import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { DriverBase } from "../base.js";
import type { StoragePath } from "../driver.js";
import { InMemoryDriver } from "../inmemory/index.js";
import { driverSockets, fixedConnection } from "../../testing/driver-sockets.js";
import { driverScripts } from "../../testing/driver-scripts.js";
import { createRemoteDriver, RemoteDriver } from "./index.js";
import { PROTOCOL_VERSION } from "./protocol.js";

/** Inmemory with a touch of its own, counting the touches and puts that reach it. */
class Touching extends InMemoryDriver {
  touches = 0;
  puts: number[] = [];

  async touch(path: StoragePath): Promise<void> {
    this.touches++;
    await super.putContent(path, new Uint8Array(0));
  }

  override async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    this.puts.push(content.length);
    await super.putContent(path, content);
  }
}

const sockets = driverSockets("berth-touch-");

async function served(
  name: string,
  options: { version?: string; callStream?: boolean; touchRpc?: "unimplemented" } = {},
) {
  const driver = new Touching();
  const client = await sockets.serve(
    name,
    driver,
    options.version ? { version: options.version } : {},
  );
  const rpcs = { touch: 0 };
  const original = client.Touch.bind(client);
  client.Touch = (...args: unknown[]) => {
    rpcs.touch++;
    if (options.touchRpc !== "unimplemented") return original(...args);
    // A driver that reports 1.4 but does not know Touch.
    const callback = args.at(-1) as (error: Error) => void;
    const error = Object.assign(new Error("12 UNIMPLEMENTED: unknown method"), {
      code: grpc.status.UNIMPLEMENTED,
      details: "unknown method",
      metadata: new grpc.Metadata(),
    });
    setImmediate(() => callback(error));
    return { on: () => {}, cancel: () => {} };
  };
  const minor = Number((options.version ?? PROTOCOL_VERSION).split(".")[1]);
  const connection = fixedConnection(client, {
    callStream: options.callStream ?? minor >= 3,
    touch: minor >= 4,
  });
  const remote = new DriverBase(new RemoteDriver(name, connection, 120_000));
  return { driver, remote, rpcs };
}

describe("Touch (protocol 1.4)", () => {
  it("reaches the driver's touch, on the call stream and as an rpc", async () => {
    for (const callStream of [true, false]) {
      const { driver, remote, rpcs } = await served(`touch-${callStream}`, { callStream });
      await remote.putContent("/gc/record", Buffer.from("old"));
      await remote.touch("/gc/record");
      await remote.touch("/gc/new/record");
      assert.equal(driver.touches, 2, "the driver's own touch ran");
      assert.deepEqual(driver.puts, [3], "no putContent for a touch");
      assert.equal(rpcs.touch, callStream ? 0 : 2, "Touch rpcs");
      assert.equal((await remote.stat("/gc/record")).size, 0);
      assert.equal((await remote.stat("/gc/new/record")).size, 0);
      await assert.rejects(remote.touch("/bad/../path"), { code: "ERR_DRIVER_INVALID_PATH" });
    }
  });

  it("an older driver gets putContent of no bytes", async () => {
    for (const version of ["1.3", "1.0"]) {
      const { driver, remote, rpcs } = await served(`old-${version}`, { version });
      await remote.touch("/gc/record");
      assert.equal(driver.touches, 0);
      assert.deepEqual(driver.puts, [0]);
      assert.equal(rpcs.touch, 0);
      assert.equal((await remote.getContent("/gc/record")).length, 0);
    }
  });

  it("a 1.4 driver without Touch gets putContent of no bytes, and is not asked again", async () => {
    const { driver, remote, rpcs } = await served("unknown", {
      callStream: false,
      touchRpc: "unimplemented",
    });
    await remote.touch("/gc/a");
    await remote.touch("/gc/b");
    assert.equal(rpcs.touch, 1, "asked once");
    assert.deepEqual(driver.puts, [0, 0]);
    assert.equal((await remote.stat("/gc/b")).size, 0);
  });
});

describe("Touch through berth driver-server filesystem", () => {
  let scratch = "";
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "berth-touch-fs-"));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  it("opens the record in place: same inode, emptied, a newer modTime", async () => {
    const bin = driverScripts(join(scratch, "bin"), { touchfs: ["filesystem"] });
    const root = join(scratch, "root");
    const remote = await createRemoteDriver("touchfs", join(bin, "registry-storage-touchfs"), {
      rootdirectory: root,
    });
    try {
      const driver = new DriverBase(remote);
      await driver.putContent("/gc/refreshed/record", Buffer.from("content"));
      const file = join(root, "gc/refreshed/record");
      const before = await stat(file);
      await new Promise((resolve) => setTimeout(resolve, 20));
      await driver.touch("/gc/refreshed/record");
      const after = await stat(file);
      assert.equal(after.ino, before.ino, "the same file, not a rename over it");
      assert.equal(after.size, 0);
      assert.ok(after.mtimeMs > before.mtimeMs, "a newer modTime");
      await driver.touch("/gc/refreshed/new/record");
      assert.equal((await driver.stat("/gc/refreshed/new/record")).size, 0);
    } finally {
      await remote.close();
    }
  });
});
