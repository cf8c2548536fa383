// The shared driver suite, move and delete: replacing, recursion, siblings left alone,
// directories emptied.

import assert from "node:assert/strict";
import { DriverErrorCode } from "../driver.js";
import type { Suite } from "./context.js";
import { assertSameBytes, randomContent, rejectsWith } from "./support.js";

const { PathNotFound } = DriverErrorCode;

export function removalTests(suite: Suite): void {
  const { test } = suite;

  test("move puts the content at a path in new directories and removes the source", async (s) => {
    const source = s.path("source", "file");
    const dest = s.path("x", "y", "z");
    const content = randomContent(32);
    await suite.driver.putContent(source, content);
    await suite.driver.move(source, dest);
    assertSameBytes(await suite.driver.getContent(dest), content, "destination");
    assert.equal((await suite.driver.stat(dest)).size, 32);
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(source),
      { code: PathNotFound, path: source },
      "source",
    );
    assert.deepEqual(
      await suite.driver.list(s.root),
      [s.path("x")],
      "the emptied source directory is gone",
    );
  });

  test("move replaces the destination", async (s) => {
    const source = s.path("source");
    const dest = s.path("dest");
    const content = randomContent(32);
    await suite.driver.putContent(source, content);
    await suite.driver.putContent(dest, randomContent(64));
    await suite.driver.move(source, dest);
    assertSameBytes(await suite.driver.getContent(dest), content, "destination");
    assert.equal((await suite.driver.stat(dest)).size, 32);
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(source),
      { code: PathNotFound, path: source },
      "source",
    );
  });

  test("move of a missing source rejects and leaves the destination alone", async (s) => {
    const source = s.path("missing");
    const dest = s.path("dest");
    const content = randomContent(32);
    await suite.driver.putContent(dest, content);
    await rejectsWith(
      suite.driver,
      suite.driver.move(source, dest),
      { code: PathNotFound, path: source },
      "move",
    );
    assertSameBytes(await suite.driver.getContent(dest), content, "destination");
    const underFile = `${dest}/foo`;
    await rejectsWith(
      suite.driver,
      suite.driver.move(underFile, `${dest}/bar`),
      { code: PathNotFound, path: underFile },
      "move from below a file",
    );
    assertSameBytes(await suite.driver.getContent(dest), content, "the file is untouched");
  });

  test("delete removes one file and leaves its siblings", async (s) => {
    const dir = s.path("dir");
    const [a, b, c] = [`${dir}/a`, `${dir}/b`, `${dir}/c`];
    for (const path of [a, b, c]) await suite.driver.putContent(path, randomContent(32));
    await suite.driver.delete(a);
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(a),
      { code: PathNotFound, path: a },
      "deleted file",
    );
    assert.equal((await suite.driver.getContent(b)).length, 32);
    assert.equal((await suite.driver.getContent(c)).length, 32);
    assert.deepEqual((await suite.driver.list(dir)).sort(), [b, c]);
  });

  test("delete of a directory is recursive", async (s) => {
    const dir = s.path("dir");
    const files = [`${dir}/a`, `${dir}/b/c`, `${dir}/b/d/e`, `${dir}/f/g`];
    for (const path of files) await suite.driver.putContent(path, randomContent(16));
    const kept = s.path("kept");
    await suite.driver.putContent(kept, randomContent(16));
    await suite.driver.delete(dir);
    for (const path of files) {
      await rejectsWith(
        suite.driver,
        suite.driver.getContent(path),
        { code: PathNotFound, path },
        "below the deleted directory",
      );
    }
    await rejectsWith(
      suite.driver,
      suite.driver.stat(dir),
      { code: PathNotFound, path: dir },
      "stat of the deleted directory",
    );
    assert.deepEqual(await suite.driver.list(s.root), [kept]);
  });

  test("delete of /a leaves /ab alone", async (s) => {
    const dir = s.path("d");
    const file = `${dir}/f`;
    const fileSuffix = `${dir}/fsuffix`;
    const nested = `${dir}/d/f`;
    const nestedSuffix = `${dir}/dsuffix/f`;
    for (const path of [file, fileSuffix, nested, nestedSuffix])
      await suite.driver.putContent(path, randomContent(8));
    await suite.driver.delete(file);
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(file),
      { code: PathNotFound, path: file },
      "deleted",
    );
    assert.equal(
      (await suite.driver.getContent(fileSuffix)).length,
      8,
      "the file with a longer name",
    );
    await suite.driver.delete(`${dir}/d`);
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(nested),
      { code: PathNotFound, path: nested },
      "deleted",
    );
    assert.equal(
      (await suite.driver.getContent(nestedSuffix)).length,
      8,
      "the directory with a longer name",
    );
  });

  test("delete of a missing path rejects; deleting the last file empties its directories", async (s) => {
    const missing = s.path("missing");
    await rejectsWith(
      suite.driver,
      suite.driver.delete(missing),
      { code: PathNotFound, path: missing },
      "delete",
    );
    const file = s.path("a", "b", "file");
    await suite.driver.putContent(file, randomContent(8));
    await suite.driver.delete(file);
    await rejectsWith(
      suite.driver,
      suite.driver.delete(file),
      { code: PathNotFound, path: file },
      "deleted twice",
    );
    const dir = s.path("a");
    await rejectsWith(
      suite.driver,
      suite.driver.stat(dir),
      { code: PathNotFound, path: dir },
      "stat of the emptied directory",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.list(dir),
      { code: PathNotFound, path: dir },
      "list of the emptied directory",
    );
  });
}
