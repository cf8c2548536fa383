// The shared driver suite, cancellation: an AbortSignal aborted before a long operation, in the
// middle of a read, a write, a copy or a walk, rejects with the contract's AbortedError, leaves
// nothing half-done that a caller could see, and keeps no file open.

import assert from "node:assert/strict";
import { DriverErrorCode, type FileInfo } from "../driver.js";
import type { Suite } from "./context.js";
import {
  CollectingWritable,
  assertSameBytes,
  openFilesNamed,
  randomContent,
  randomName,
  rejectsWith,
} from "./support.js";

const MiB = 1024 * 1024;
const { Aborted, PathNotFound } = DriverErrorCode;

export function cancellationTests(suite: Suite): void {
  const { test } = suite;

  test("every long operation rejects at once when its signal aborted before the call", async (s) => {
    const driver = suite.driver;
    const path = s.path("dir", "file");
    const content = randomContent(1024);
    await driver.putContent(path, content);
    const signal = AbortSignal.abort();
    const calls: [string, Promise<unknown>][] = [
      ["reader", driver.reader(path, 0, { signal })],
      ["copyTo", driver.copyTo(path, new CollectingWritable(), 0, undefined, { signal })],
      ["writer", driver.writer(s.path("new"), false, { signal })],
      ["list", driver.list(s.path("dir"), { signal })],
      ["move", driver.move(path, s.path("moved"), { signal })],
      ["delete", driver.delete(s.path("dir"), { signal })],
      ["walk", driver.walk(s.root, () => assert.fail("walk called back"), { signal })],
    ];
    for (const [what, call] of calls) {
      const error = await rejectsWith(driver, call, { code: Aborted }, what);
      assert.equal((error as Error).name, "AbortError", `${what}: error.name`);
    }
    // Nothing was done.
    assertSameBytes(await driver.getContent(path), content, "the file after the calls");
    await rejectsWith(driver, driver.stat(s.path("moved")), { code: PathNotFound }, "moved");
    await rejectsWith(driver, driver.stat(s.path("new")), { code: PathNotFound }, "new");
  });

  test("aborting a read destroys its stream with AbortedError and frees the file", async (s) => {
    const name = randomName(16);
    const path = s.path(name);
    await suite.driver.putContent(path, randomContent(4 * MiB));
    const controller = new AbortController();
    const stream = await suite.driver.reader(path, 0, { signal: controller.signal });
    await rejectsWith(
      suite.driver,
      (async () => {
        for await (const _chunk of stream as AsyncIterable<Buffer>) {
          controller.abort();
        }
      })(),
      { code: Aborted, path },
      "the stream after the abort",
    );
    assert.equal(await openFilesNamed(name), 0, "files left open after the abort");
  });

  test("an aborted writer publishes nothing and keeps what an earlier session closed", async (s) => {
    const driver = suite.driver;
    const path = s.path("upload", "data");
    const first = randomContent(100);
    const earlier = await driver.writer(path, false);
    await earlier.write(first);
    await earlier.close();

    const controller = new AbortController();
    const writer = await driver.writer(path, true, { signal: controller.signal });
    const second = randomContent(50);
    await writer.write(second);
    controller.abort();
    await rejectsWith(driver, writer.write(randomContent(10)), { code: Aborted, path }, "write");
    await rejectsWith(driver, writer.commit(), { code: Aborted, path }, "commit");
    await rejectsWith(driver, driver.stat(path), { code: PathNotFound, path }, "stat after abort");
    // The caller decides what is kept: closing keeps both sessions, resumable.
    await writer.close();
    const resumed = await driver.writer(path, true);
    assert.equal(resumed.size, 150, "size of the resumed writer");
    await resumed.commit();
    assertSameBytes(await driver.getContent(path), Buffer.concat([first, second]), "content");
  });

  test("a write aborted with its bytes in flight keeps a prefix of them for close()", async (s) => {
    const driver = suite.driver;
    const path = s.path("inflight", "data");
    // Larger than a part or block of the object stores, so the abort meets a request in flight.
    const content = randomContent(12 * MiB + 5);
    const controller = new AbortController();
    const writer = await driver.writer(path, false, { signal: controller.signal });
    const write = writer.write(content);
    setImmediate(() => controller.abort());
    // A driver may finish the write before it sees the abort; one that stops rejects.
    let finished = true;
    try {
      await write;
    } catch (error) {
      finished = false;
      assert.equal(
        (error as { code?: unknown }).code,
        Aborted,
        `the write in flight: ${String(error)}`,
      );
    }
    await writer.close();
    const resumed = await driver.writer(path, true);
    const kept = resumed.size;
    if (finished) assert.equal(kept, content.length, "a write that resolved is kept whole");
    else assert.ok(kept <= content.length, `kept ${kept} bytes of ${content.length} written`);
    await resumed.commit();
    assertSameBytes(await driver.getContent(path), content.subarray(0, kept), "what was kept");
  });

  test("aborting a copyTo rejects with AbortedError, leaves the destination open and frees the file", async (s) => {
    const name = randomName(16);
    const path = s.path(name);
    const content = randomContent(6 * MiB);
    await suite.driver.putContent(path, content);
    const controller = new AbortController();
    const destination = new CollectingWritable({ bytes: MiB, how: "abort", controller });
    await rejectsWith(
      suite.driver,
      suite.driver.copyTo(path, destination, 0, undefined, { signal: controller.signal }),
      { code: Aborted, path },
      "copyTo aborted",
    );
    assert.equal(destination.destroyed, false, "the destination is the caller's to end");
    const received = destination.content();
    assertSameBytes(received, content.subarray(0, received.length), "bytes before the abort");
    assert.equal(await openFilesNamed(name), 0, "files left open after the abort");
  });

  test("aborting a walk stops it before the next callback", async (s) => {
    for (const name of ["a", "b/c", "b/d", "e", "f"]) {
      await suite.driver.putContent(s.path(name), randomContent(8));
    }
    const controller = new AbortController();
    const seen: FileInfo[] = [];
    await rejectsWith(
      suite.driver,
      suite.driver.walk(
        s.root,
        (info) => {
          seen.push(info);
          if (seen.length === 2) controller.abort();
        },
        { signal: controller.signal },
      ),
      { code: Aborted, path: s.root },
      "walk aborted",
    );
    assert.deepEqual(
      seen.map((info) => info.path),
      [s.path("a"), s.path("b")],
      "the callbacks before the abort",
    );
  });
}
