// The shared driver suite, concurrency: many writers, readers, and putContent with getContent
// of one path at once.

import assert from "node:assert/strict";
import { buffer } from "node:stream/consumers";
import type { Suite } from "./context.js";
import { assertSameBytes, randomContent } from "./support.js";

const MiB = 1024 * 1024;

export function concurrencyTests(suite: Suite): void {
  const { test } = suite;

  test("putContentIfAbsent: of 8 concurrent callers exactly one wins, its content stays", async (s) => {
    const path = s.path("lease");
    const contents = Array.from({ length: 8 }, (_, index) => Buffer.from(`owner ${index}`));
    const won = await Promise.all(
      contents.map((content) => suite.driver.putContentIfAbsent(path, content)),
    );
    assert.equal(won.filter(Boolean).length, 1, `winners: ${won.join(", ")}`);
    const winner = contents[won.indexOf(true)]!;
    assertSameBytes(await suite.driver.getContent(path), winner, "the winner's content");
    assert.equal(await suite.driver.putContentIfAbsent(path, Buffer.from("late")), false);
    await suite.driver.delete(path);
    assert.equal(await suite.driver.putContentIfAbsent(path, Buffer.from("again")), true);
    assertSameBytes(await suite.driver.getContent(path), Buffer.from("again"), "after a delete");
  });

  test("32 writers to different paths at once each commit their own content", async (s) => {
    const contents = Array.from({ length: 32 }, () => randomContent(256 * 1024));
    await Promise.all(
      contents.map(async (content, index) => {
        const writer = await suite.driver.writer(s.path(`w${index}`, "data"), false);
        for (let at = 0; at < content.length; at += 16 * 1024) {
          await writer.write(content.subarray(at, at + 16 * 1024));
        }
        await writer.commit();
      }),
    );
    for (const [index, content] of contents.entries()) {
      assertSameBytes(
        await suite.driver.getContent(s.path(`w${index}`, "data")),
        content,
        `writer ${index}`,
      );
    }
  });

  test("32 readers of one path at once each read the right bytes", async (s) => {
    const path = s.path("shared");
    const content = randomContent(4 * MiB);
    await suite.driver.putContent(path, content);
    const offsets = Array.from({ length: 32 }, (_, index) =>
      index === 0 ? 0 : index === 1 ? content.length : Math.floor(Math.random() * content.length),
    );
    const results = await Promise.all(
      offsets.map(async (offset) => buffer(await suite.driver.reader(path, offset))),
    );
    for (const [index, result] of results.entries()) {
      assertSameBytes(result, content.subarray(offsets[index]), `reader at ${offsets[index]}`);
    }
  });

  test("concurrent putContent and getContent of one path see whole versions only", async (s) => {
    const path = s.path("contended");
    const versions = Array.from({ length: 9 }, () => randomContent(256 * 1024));
    await suite.driver.putContent(path, versions[0]!);
    const reads: Promise<Uint8Array>[] = [];
    const writes = versions.slice(1).map((version) => {
      reads.push(suite.driver.getContent(path), suite.driver.getContent(path));
      return suite.driver.putContent(path, version);
    });
    await Promise.all(writes);
    for (const read of await Promise.all(reads)) {
      const bytes = Buffer.from(read);
      assert.ok(
        versions.some((version) => version.equals(bytes)),
        `a read during the puts gave ${bytes.length} bytes that are none of the versions`,
      );
    }
    const final = Buffer.from(await suite.driver.getContent(path));
    assert.ok(
      versions.slice(1).some((version) => version.equals(final)),
      "the final content is one of the puts",
    );
  });
}
