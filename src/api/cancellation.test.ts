// A client that goes away aborts the storage work its request started: the signal the API gives
// the storage layer reaches the driver, and aborts when the connection closes before the response
// is finished. A request that finishes leaves its signal alone.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { get as httpGet, request as httpRequest } from "node:http";
import type { Readable } from "node:stream";
import { after, before, test } from "node:test";
import { InMemoryDriver, registerDriver } from "../driver/index.js";
import type { CallOptions, FileWriter, StoragePath } from "../driver/index.js";
import { pushBlob, startTestRegistry, type TestRegistry } from "../testing/harness.js";

/** The inmemory driver, keeping the signal of each reader and writer it is asked for. */
class SignalRecordingDriver extends InMemoryDriver {
  readonly signals: { method: string; path: StoragePath; signal: AbortSignal | undefined }[] = [];

  override reader(path: StoragePath, offset?: number, options?: CallOptions): Promise<Readable> {
    this.signals.push({ method: "reader", path, signal: options?.signal });
    return super.reader(path, offset);
  }

  override writer(path: StoragePath, append: boolean, options?: CallOptions): Promise<FileWriter> {
    this.signals.push({ method: "writer", path, signal: options?.signal });
    return super.writer(path, append);
  }

  /** The signal of the last `method` call, once one was made. */
  last(method: string): AbortSignal {
    const found = this.signals.filter((entry) => entry.method === method).at(-1);
    assert.ok(found?.signal !== undefined, `a ${method} call with a signal`);
    return found.signal;
  }
}

let driver: SignalRecordingDriver;
registerDriver("signal-recording-inmemory", () => (driver = new SignalRecordingDriver()));

let registry: TestRegistry;
before(async () => {
  registry = await startTestRegistry({ driver: "signal-recording-inmemory" });
});
after(() => registry.close());

/** Resolves when `signal` aborts; the test's own timeout fails it otherwise. */
async function aborted(signal: AbortSignal): Promise<void> {
  if (!signal.aborted) await once(signal, "abort");
}

test("a blob GET passes a signal down that aborts when the client leaves", async () => {
  const big = randomBytes(8 * 1024 * 1024);
  const digest = await pushBlob(registry, "cancel/get", big);
  const whole = await registry.fetch(`/v2/cancel/get/blobs/${digest}`);
  assert.equal((await whole.arrayBuffer()).byteLength, big.length);
  assert.equal(driver.last("reader").aborted, false, "a finished GET does not abort");

  await new Promise<void>((resolve, reject) => {
    const request = httpGet(`${registry.url}/v2/cancel/get/blobs/${digest}`, (response) => {
      response.once("data", () => {
        request.destroy();
        resolve();
      });
    });
    request.on("error", (error) => (request.destroyed ? resolve() : reject(error)));
  });
  await aborted(driver.last("reader"));
});

test("an upload PATCH passes a signal down that aborts when the client leaves", async () => {
  const started = await registry.fetch("/v2/cancel/patch/blobs/uploads/", { method: "POST" });
  assert.equal(started.status, 202);
  const location = started.headers.get("location")!;
  await new Promise<void>((resolve) => {
    const request = httpRequest(`${registry.url}${location}`, {
      method: "PATCH",
      headers: { "Content-Length": "200000", "Content-Type": "application/octet-stream" },
    });
    request.on("error", () => resolve());
    request.write(randomBytes(100_000), () => {
      setTimeout(() => {
        request.destroy();
        resolve();
      }, 50);
    });
  });
  await aborted(driver.last("writer"));
});
