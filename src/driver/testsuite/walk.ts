// The shared driver suite, walk: order, skip and stop.

import assert from "node:assert/strict";
import { type FileInfo, type WalkAction } from "../driver.js";
import type { Scope, Suite } from "./context.js";
import { randomContent } from "./support.js";

export function walkTests(suite: Suite): void {
  const { test } = suite;

  /** A tree whose names sort differently by full path than by component: "b-x" < "b/c". */
  async function walkTree(s: Scope): Promise<{ expected: FileInfo[] }> {
    const files: [string, number][] = [
      ["A1", 1],
      ["a", 2],
      ["b/c", 3],
      ["b/d/e", 4],
      ["b-x", 5],
      ["b.y", 6],
      ["c", 7],
    ];
    for (const [name, size] of files)
      await suite.driver.putContent(s.path(name), randomContent(size));
    const dir = (name: string): FileInfo => ({
      path: s.path(name),
      size: 0,
      modTime: new Date(0),
      isDir: true,
    });
    const file = (name: string, size: number): FileInfo => ({
      path: s.path(name),
      size,
      modTime: new Date(0),
      isDir: false,
    });
    return {
      expected: [
        file("A1", 1),
        file("a", 2),
        dir("b"),
        file("b/c", 3),
        dir("b/d"),
        file("b/d/e", 4),
        file("b-x", 5),
        file("b.y", 6),
        file("c", 7),
      ],
    };
  }

  async function walked(
    path: string,
    steer: (info: FileInfo) => WalkAction | void = () => {},
  ): Promise<FileInfo[]> {
    const seen: FileInfo[] = [];
    await suite.driver.walk(path, async (info) => {
      seen.push(info);
      return steer(info);
    });
    return seen;
  }

  function assertWalk(actual: FileInfo[], expected: FileInfo[], what: string): void {
    assert.deepEqual(
      actual.map((info) => info.path),
      expected.map((info) => info.path),
      `${what}: paths in order`,
    );
    for (const [index, info] of actual.entries()) {
      const want = expected[index]!;
      assert.equal(info.isDir, want.isDir, `${what}: ${info.path} isDir`);
      if (!want.isDir) assert.equal(info.size, want.size, `${what}: ${info.path} size`);
      assert.ok(info.modTime instanceof Date, `${what}: ${info.path} modTime`);
    }
  }

  test("walk visits depth first, the children of each directory in lexical order", async (s) => {
    const { expected } = await walkTree(s);
    assertWalk(await walked(s.root), expected, "walk of the test directory");
    const b = s.path("b");
    assertWalk(
      await walked(b),
      expected.filter((info) => info.path.startsWith(`${b}/`)),
      "walk of a subdirectory",
    );
    const fromRoot: string[] = [];
    await suite.driver.walk("/", (info) => {
      if (info.path === s.root || info.path.startsWith(`${s.root}/`)) fromRoot.push(info.path);
      // Other top-level directories of a shared backend are not this test's business.
      if (info.isDir && info.path.lastIndexOf("/") === 0 && info.path !== s.root) return "skip";
    });
    assert.deepEqual(fromRoot, [s.root, ...expected.map((info) => info.path)], "walk of /");
  });

  test("walk does not descend into a directory its callback skips", async (s) => {
    const { expected } = await walkTree(s);
    const b = s.path("b");
    const seen = await walked(s.root, (info) => (info.path === b ? "skip" : "continue"));
    assertWalk(
      seen,
      expected.filter((info) => !info.path.startsWith(`${b}/`)),
      "skipping b",
    );
  });

  test("walk skips the rest of a directory when its callback skips a file", async (s) => {
    const { expected } = await walkTree(s);
    const skipAt = s.path("b/c");
    const seen = await walked(s.root, (info) => (info.path === skipAt ? "skip" : undefined));
    const skipped = new Set([s.path("b/d"), s.path("b/d/e")]);
    assertWalk(
      seen,
      expected.filter((info) => !skipped.has(info.path)),
      "skipping at b/c",
    );
  });

  test("walk ends when its callback says stop", async (s) => {
    const { expected } = await walkTree(s);
    const stopAt = s.path("b/d");
    const seen = await walked(s.root, (info) => (info.path === stopAt ? "stop" : "continue"));
    const end = expected.findIndex((info) => info.path === stopAt);
    assertWalk(seen, expected.slice(0, end + 1), "stopping at b/d");
  });
}
