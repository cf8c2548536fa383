// Protocol 1.3's call stream: the small unary calls go as tagged messages on one `Calls` stream,
// answered out of order as they finish; an abort or a timeout cancels the call on the driver and
// the stream goes on; errors keep their contract type; small writers go as one `write` call and
// larger ones through Writer; a driver without `Calls` gets rpcs. (The shared suite runs over the
// stream in remote.test.ts; a driver killed with calls in flight, in faults.test.ts.)

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import { describe, it } from "node:test";
import { DriverErrorCode, type CallOptions, type StoragePath } from "../driver.js";
import { InMemoryDriver } from "../inmemory/index.js";
import { driverSockets, fixedConnection } from "../../testing/driver-sockets.js";
import { RemoteDriver } from "./index.js";
import { CALL_KINDS } from "./protocol.js";

/** Inmemory, where deleting a path containing "gate" waits until `open()` or its signal aborts. */
class Gated extends InMemoryDriver {
  private release: (() => void)[] = [];
  /** Reasons of the signals that aborted a gated call. */
  readonly aborted: unknown[] = [];
  /** Gated calls that reached the driver. */
  entered = 0;

  override async delete(path: StoragePath, options?: CallOptions): Promise<void> {
    if (path.includes("gate")) {
      const signal = options?.signal;
      this.entered++;
      await new Promise<void>((resolve, reject) => {
        this.release.push(resolve);
        const abort = () => {
          this.aborted.push(signal!.reason);
          reject(signal!.reason as Error);
        };
        if (signal?.aborted) abort();
        signal?.addEventListener("abort", abort);
      });
    }
    return super.delete(path);
  }

  open(): void {
    for (const release of this.release.splice(0)) release();
  }
}

const sockets = driverSockets("berth-calls-");

/**
 * A Gated driver served on a socket and a RemoteDriver of it whose unary rpcs fail the test (so
 * every call must take the stream); `rpcs` counts the Writer rpcs opened.
 */
async function served(name: string, options: { callTimeoutMs?: number; version?: string } = {}) {
  const driver = new Gated();
  const version = options.version;
  const client = await sockets.serve(name, driver, version ? { version } : {});
  const rpcs = { writers: 0, unary: 0 };
  for (const rpc of Object.keys(CALL_KINDS) as (keyof typeof CALL_KINDS)[]) {
    const original = client[rpc].bind(client);
    client[rpc] = (...args: unknown[]) => {
      rpcs.unary++;
      return original(...args);
    };
  }
  const writer = client.Writer.bind(client);
  client.Writer = (...args: unknown[]) => {
    rpcs.writers++;
    return writer(...args);
  };
  // Messages on the Calls streams: written by Berth, and received from the driver.
  const messages = { sent: 0, received: 0 };
  const calls = client.Calls.bind(client);
  client.Calls = (...args: unknown[]) => {
    const stream = calls(...args) as Duplex;
    const write = stream.write.bind(stream) as (...rest: unknown[]) => boolean;
    stream.write = (...rest: unknown[]) => {
      messages.sent++;
      return write(...rest);
    };
    stream.on("data", () => messages.received++);
    return stream;
  };
  const connection = fixedConnection(client, {
    callStream: version === undefined,
    callBatches: version === undefined,
  });
  const remote = new RemoteDriver(name, connection, options.callTimeoutMs ?? 120_000);
  return { driver, remote, rpcs, client, messages };
}

describe("the call stream (protocol 1.3)", () => {
  it("answers calls as they finish, out of order, all on the stream", async () => {
    const { driver, remote, rpcs } = await served("order");
    await remote.putContent("/gate", Buffer.from("held"));
    let gateDone = false;
    const gated = remote.delete("/gate").then(() => (gateDone = true));
    // Calls sent after the gated one are answered while it waits.
    const content = randomBytes(4096);
    await Promise.all([remote.putContent("/a/b", content), remote.putContent("/a/c", content)]);
    assert.deepEqual(Buffer.from(await remote.getContent("/a/b")), content);
    assert.equal((await remote.stat("/a/c")).size, 4096);
    assert.deepEqual((await remote.list("/a")).sort(), ["/a/b", "/a/c"]);
    await remote.move("/a/c", "/a/d");
    assert.equal(gateDone, false, "the gated call is still in flight");
    driver.open();
    await gated;
    await assert.rejects(remote.stat("/gate"), { code: DriverErrorCode.PathNotFound });
    assert.equal(rpcs.unary, 0, "no unary rpc was used");
    await remote.close?.();
  });

  it("keeps the contract's errors: type, path and the driver's name", async () => {
    const { remote } = await served("errors");
    await assert.rejects(remote.stat("/missing/file"), {
      code: DriverErrorCode.PathNotFound,
      path: "/missing/file",
      driverName: "errors",
    });
    await assert.rejects(remote.getContent("/missing"), { code: DriverErrorCode.PathNotFound });
    await remote.putContent("/dir/file", Buffer.from("x"));
    await assert.rejects(remote.move("/dir/nothing", "/dir/other"), {
      code: DriverErrorCode.PathNotFound,
    });
  });

  it("an aborted call rejects at once, is cancelled on the driver, and the stream goes on", async () => {
    const { driver, remote } = await served("abort");
    await remote.putContent("/gate", Buffer.from("held"));
    const controller = new AbortController();
    const call = remote.delete("/gate", { signal: controller.signal });
    while (driver.entered === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort(new Error("the caller gave up"));
    await assert.rejects(call, { code: DriverErrorCode.Aborted, path: "/gate" });
    while (driver.aborted.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.match(String(driver.aborted[0]), /cancelled/);
    assert.equal(Buffer.from(await remote.getContent("/gate")).toString(), "held");
  });

  it("a call past its deadline fails saying so and is cancelled on the driver", async () => {
    const { driver, remote } = await served("deadline", { callTimeoutMs: 300 });
    await remote.putContent("/gate", Buffer.from("held"));
    const error = await remote.delete("/gate").then(
      () => assert.fail("the gated delete resolved"),
      (caught: Error) => caught,
    );
    assert.equal((error as { code?: string }).code, DriverErrorCode.Backend);
    assert.match((error.cause as Error).message, /did not answer within 300 ms/);
    while (driver.aborted.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal((await remote.stat("/gate")).size, 4, "other calls are answered");
  });

  it("a small writer goes as one call, a larger one through Writer; both resume", async () => {
    const { remote, rpcs } = await served("writers");
    const small = randomBytes(4096);
    const writer = await remote.writer("/small", false);
    await writer.write(small.subarray(0, 1000));
    await writer.write(small.subarray(1000));
    assert.equal(writer.size, 4096);
    await writer.close();
    await assert.rejects(remote.writer("/nothing", true), { code: DriverErrorCode.PathNotFound });
    const resumed = await remote.writer("/small", true);
    assert.equal(resumed.size, 4096, "resumed at the closed size");
    await resumed.write(small);
    await resumed.commit();
    assert.deepEqual(Buffer.from(await remote.getContent("/small")), Buffer.concat([small, small]));
    assert.equal(rpcs.writers, 0, "no Writer rpc for small writers");

    const large = randomBytes(300 * 1024);
    const big = await remote.writer("/large", false);
    for (let at = 0; at < large.length; at += 32 * 1024) {
      await big.write(large.subarray(at, at + 32 * 1024));
    }
    assert.equal(big.size, large.length);
    await big.commit();
    assert.equal(rpcs.writers, 1, "one Writer rpc once the content grew");
    assert.deepEqual(Buffer.from(await remote.getContent("/large")), large);

    const cancelled = await remote.writer("/cancelled", false);
    await cancelled.write(small);
    await cancelled.cancel();
    await assert.rejects(remote.stat("/cancelled"), { code: DriverErrorCode.PathNotFound });
    await assert.rejects(cancelled.write(small), { code: DriverErrorCode.WriterClosed });
  });

  it("calls ready at once go in one message, and their replies too (1.5)", async () => {
    const { driver, remote, messages } = await served("batches");
    await remote.putContent("/gate", Buffer.from("held"));
    for (let i = 0; i < 10; i++) await remote.putContent(`/b/${i}`, Buffer.from(String(i)));
    const before = { ...messages };
    const gated = remote.delete("/gate");
    const stats = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        remote.stat(i === 9 ? "/b/missing" : `/b/${i}`).catch((error: Error) => error),
      ),
    );
    assert.equal(messages.sent - before.sent, 1, "eleven calls in one message");
    assert.ok(messages.received - before.received < 10, "the replies came batched");
    assert.deepEqual(
      stats.slice(0, 9).map((info) => (info as { size: number }).size),
      Array(9).fill(1),
    );
    assert.equal((stats[9] as { code?: string }).code, DriverErrorCode.PathNotFound);
    driver.open();
    await gated;
  });

  it("a Berth that does not say 1.5 gets every reply as a message of its own", async () => {
    const { remote, client } = await served("unbatched");
    await remote.putContent("/u", Buffer.from("u"));
    // A 1.3 Berth: no berth-protocol metadata; eleven calls written in one tick.
    const stream = client.Calls() as Duplex;
    const replies: number[] = [];
    stream.on("data", (reply: { id: number }) => replies.push(reply.id));
    const ended = new Promise((resolve) => stream.on("status", resolve));
    for (let id = 1; id <= 11; id++) stream.write({ id, kind: "stat", body: { path: "/u" } });
    stream.end();
    await ended;
    assert.deepEqual(
      replies.sort((a, b) => a - b),
      Array.from({ length: 11 }, (_, i) => i + 1),
    );
  });

  it("a driver that reports 1.2 gets unary rpcs and Writer rpcs", async () => {
    const { remote, rpcs } = await served("older", { version: "1.2" });
    await remote.putContent("/x", Buffer.from("x"));
    assert.equal((await remote.stat("/x")).size, 1);
    const writer = await remote.writer("/y", false);
    await writer.write(Buffer.from("y"));
    await writer.commit();
    assert.equal(rpcs.unary, 2);
    assert.equal(rpcs.writers, 1);
  });
});
