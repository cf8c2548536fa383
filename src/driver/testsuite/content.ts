// The shared driver suite, content: putContent, getContent, reader and writer round trips,
// missing paths, large content in bounded memory, reader offsets.

import assert from "node:assert/strict";
import { DriverErrorCode } from "../driver.js";
import { buffer } from "node:stream/consumers";
import type { Suite } from "./context.js";
import {
  ContentStream,
  MemoryWatch,
  assertSameBytes,
  hashStream,
  randomContent,
  randomName,
  rejectsWith,
} from "./support.js";

const MiB = 1024 * 1024;
const { PathNotFound, InvalidOffset } = DriverErrorCode;

export function contentTests(suite: Suite): void {
  const { test, largeSize } = suite;

  const samples: [string, Buffer][] = [
    ["empty", Buffer.alloc(0)],
    ["one byte", Buffer.from("a")],
    ["UTF-8", Buffer.from([0xc3, 0x9f])],
    ["non-UTF-8", Buffer.from([0x80, 0x80, 0x80, 0x80])],
    ["binary", Buffer.from([0xff, 0xfe, 0x00, 0xc0, 0x00, 0x0a, 0x0d])],
    ["32 random bytes", randomContent(32)],
    ["1 MiB random", randomContent(MiB)],
  ];

  test("putContent then getContent, reader and stat give the same bytes", async (s) => {
    for (const [what, content] of samples) {
      const path = s.path(randomName(), randomName());
      await suite.driver.putContent(path, content);
      assertSameBytes(await suite.driver.getContent(path), content, `${what}: getContent`);
      assertSameBytes(await buffer(await suite.driver.reader(path, 0)), content, `${what}: reader`);
      const info = await suite.driver.stat(path);
      assert.equal(info.size, content.length, `${what}: stat size`);
      assert.equal(info.isDir, false, `${what}: stat isDir`);
    }
  });

  test("a writer streams content that reader and getContent give back", async (s) => {
    for (const [what, content] of samples) {
      const path = s.path(randomName(), randomName());
      const writer = await suite.driver.writer(path, false);
      assert.equal(writer.size, 0);
      const step = Math.max(1, Math.ceil(content.length / 3));
      for (let at = 0; at < content.length; at += step) {
        await writer.write(content.subarray(at, at + step));
        assert.equal(
          writer.size,
          Math.min(at + step, content.length),
          `${what}: size while writing`,
        );
      }
      await writer.commit();
      assertSameBytes(await buffer(await suite.driver.reader(path, 0)), content, `${what}: reader`);
      assertSameBytes(await suite.driver.getContent(path), content, `${what}: getContent`);
      assert.equal((await suite.driver.stat(path)).size, content.length, `${what}: stat size`);
    }
  });

  test("putContent keeps the bytes it was given, not later changes to the buffer", async (s) => {
    const path = s.path("file");
    const content = randomContent(1024);
    const expected = Buffer.from(content);
    await suite.driver.putContent(path, content);
    content.fill(0);
    assertSameBytes(await suite.driver.getContent(path), expected, "getContent");
  });

  test("putContent over longer content truncates it", async (s) => {
    const path = s.path("dir", "file");
    await suite.driver.putContent(path, randomContent(MiB));
    const shorter = randomContent(1024);
    await suite.driver.putContent(path, shorter);
    assertSameBytes(await suite.driver.getContent(path), shorter, "after the shorter put");
    assert.equal((await suite.driver.stat(path)).size, 1024);
    await suite.driver.putContent(path, Buffer.alloc(0));
    assert.equal((await suite.driver.getContent(path)).length, 0, "after an empty put");
  });

  test("a committed writer over longer content replaces it", async (s) => {
    const path = s.path("file");
    await suite.driver.putContent(path, randomContent(64 * 1024));
    const writer = await suite.driver.writer(path, false);
    const shorter = randomContent(10);
    await writer.write(shorter);
    await writer.commit();
    assertSameBytes(await suite.driver.getContent(path), shorter, "content");
    assert.equal((await suite.driver.stat(path)).size, 10);
  });

  test("a missing path rejects with PathNotFoundError naming it", async (s) => {
    const missing = s.path("missing", "file");
    await suite.driver.putContent(s.path("other"), randomContent(4));
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(missing),
      { code: PathNotFound, path: missing },
      "getContent",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.reader(missing, 0),
      { code: PathNotFound, path: missing },
      "reader(0)",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.reader(missing, 64),
      { code: PathNotFound, path: missing },
      "reader(64)",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.stat(missing),
      { code: PathNotFound, path: missing },
      "stat",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.list(missing),
      { code: PathNotFound, path: missing },
      "list",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.delete(missing),
      { code: PathNotFound, path: missing },
      "delete",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.writer(missing, true),
      { code: PathNotFound, path: missing },
      "writer(append)",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.walk(missing, () => assert.fail("walk called back")),
      { code: PathNotFound, path: missing },
      "walk",
    );
  });

  test(`${largeSize} bytes stream through a writer and a reader in bounded memory`, async (s) => {
    const path = s.path("large", "blob");
    // Growth allowed while the content streams: far below the content itself.
    const limit = Math.max(largeSize / 2, 32 * MiB);
    const content = new ContentStream(largeSize, MiB);
    const writing = new MemoryWatch(8 * MiB);
    const writer = await suite.driver.writer(path, false);
    for (let chunk = content.next(); chunk !== undefined; chunk = content.next()) {
      await writer.write(chunk);
      writing.passed(chunk.length);
    }
    assert.equal(writer.size, largeSize);
    await writer.commit();
    const written = content.digest();
    if (!suite.contentInMemory) {
      assert.ok(
        writing.growth() < limit,
        `writing ${largeSize} bytes grew memory by ${writing.growth()} bytes (limit ${limit})`,
      );
    }
    assert.equal((await suite.driver.stat(path)).size, largeSize);

    const reading = new MemoryWatch(8 * MiB);
    const read = await hashStream(await suite.driver.reader(path, 0), (length) =>
      reading.passed(length),
    );
    assert.equal(read.size, largeSize, "bytes read");
    assert.equal(read.digest, written, "sha256 of the bytes read");
    assert.ok(
      reading.growth() < limit,
      `reading ${largeSize} bytes grew memory by ${reading.growth()} bytes (limit ${limit})`,
    );
  });

  test("reader starts at the offset asked for", async (s) => {
    const path = s.path("file");
    const content = randomContent(96);
    await suite.driver.putContent(path, content);
    for (const offset of [0, 1, 32, 64, 95]) {
      assertSameBytes(
        await buffer(await suite.driver.reader(path, offset)),
        content.subarray(offset),
        `reader(${offset})`,
      );
    }
    for (const offset of [96, 97, 10_000]) {
      assert.equal(
        (await buffer(await suite.driver.reader(path, offset))).length,
        0,
        `reader(${offset}) is empty`,
      );
    }
    assertSameBytes(
      await buffer(await suite.driver.reader(path)),
      content,
      "reader() reads from 0",
    );
    for (const offset of [-1, -96, 1.5, Number.NaN]) {
      const error = await rejectsWith(
        suite.driver,
        suite.driver.reader(path, offset),
        { code: InvalidOffset, path },
        `reader(${offset})`,
      );
      assert.ok(Object.is((error as { offset?: number }).offset, offset), "error.offset");
    }
  });
}
