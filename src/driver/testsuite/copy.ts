// The shared driver suite, copyTo: whole content, offsets and ranges, destinations that fail or
// close.

import assert from "node:assert/strict";
import { DriverErrorCode } from "../driver.js";
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
const { PathNotFound, InvalidOffset, DestinationClosed } = DriverErrorCode;

export function copyTests(suite: Suite): void {
  const { test } = suite;

  test("copyTo writes the content, from an offset, or a range of it", async (s) => {
    const path = s.path("file");
    // Several MiB, so a suite.driver copying with large buffers goes round more than once.
    const content = randomContent(5 * MiB + 123);
    await suite.driver.putContent(path, content);
    const copy = async (offset: number, length?: number) => {
      const destination = new CollectingWritable();
      await suite.driver.copyTo(path, destination, offset, length);
      return destination.content();
    };
    assertSameBytes(await copy(0), content, "copyTo(0)");
    for (const offset of [1, MiB - 1, MiB, 2 * MiB + 1, 3 * MiB + 7, content.length - 1]) {
      assertSameBytes(await copy(offset), content.subarray(offset), `copyTo(${offset})`);
    }
    for (const [offset, length] of [
      [0, 0],
      [0, 1],
      [5, 100],
      [MiB - 10, 20],
      [2 * MiB - 10, 20],
      [123, 4 * MiB],
      [content.length - 10, 10],
    ] as [number, number][]) {
      assertSameBytes(
        await copy(offset, length),
        content.subarray(offset, offset + length),
        `copyTo(${offset}, ${length})`,
      );
    }
    assertSameBytes(
      await copy(content.length - 10, 1000),
      content.subarray(content.length - 10),
      "a length past the end copies up to the end",
    );
    for (const offset of [content.length, content.length + 10]) {
      assert.equal((await copy(offset)).length, 0, `copyTo(${offset}) copies nothing`);
    }
    for (const [offset, length] of [
      [-1, undefined],
      [1.5, undefined],
      [0, -1],
    ]) {
      await rejectsWith(
        suite.driver,
        suite.driver.copyTo(path, new CollectingWritable(), offset, length),
        { code: InvalidOffset, path },
        `copyTo(${offset}, ${length})`,
      );
    }
    await rejectsWith(
      suite.driver,
      suite.driver.copyTo(s.path("missing"), new CollectingWritable(), 0),
      { code: PathNotFound, path: s.path("missing") },
      "copyTo of a missing path",
    );
  });

  test("copyTo rejects and keeps no file open when the destination fails or closes", async (s) => {
    const name = randomName(16);
    const path = s.path(name);
    const content = randomContent(3 * MiB);
    await suite.driver.putContent(path, content);
    for (const how of ["error", "close"] as const) {
      const destination = new CollectingWritable({ bytes: MiB + 5, how });
      await rejectsWith(
        suite.driver,
        suite.driver.copyTo(path, destination, 0),
        { code: DestinationClosed, path },
        `a destination that does ${how}`,
      );
      destination.destroy();
      const received = destination.content();
      assertSameBytes(received, content.subarray(0, received.length), `before the ${how}`);
      assert.equal(await openFilesNamed(name), 0, `files left open after the ${how}`);
    }
    // The content is still whole and copies again.
    const destination = new CollectingWritable();
    await suite.driver.copyTo(path, destination, 0);
    assertSameBytes(destination.content(), content, "copyTo after the failures");
  });
}
