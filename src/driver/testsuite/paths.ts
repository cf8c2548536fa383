// The shared driver suite, paths: the root, every valid path accepted, every invalid one
// rejected in every method.

import assert from "node:assert/strict";
import { DriverErrorCode } from "../driver.js";
import type { Suite } from "./context.js";
import { assertSameBytes, randomContent, rejectsWith } from "./support.js";

const { InvalidPath } = DriverErrorCode;

export function pathTests(suite: Suite): void {
  const { test } = suite;

  test("the root / always exists for list and stat", async (s) => {
    assert.ok(Array.isArray(await suite.driver.list("/")));
    assert.equal((await suite.driver.stat("/")).isDir, true);
    await suite.driver.putContent(s.path("file"), randomContent(8));
    assert.ok(
      (await suite.driver.list("/")).includes(s.root),
      "list(/) includes the new directory",
    );
    const root = await suite.driver.stat("/");
    assert.equal(root.path, "/");
    assert.equal(root.isDir, true);
  });

  test("accepts every valid path", async (s) => {
    const names = [
      "a",
      "2",
      "aa",
      "a.a",
      "0-9/abcdefg",
      "abcdefg/z.75",
      "abc/1.2.3.4.5-6_zyx/123.z/4",
      "docker/docker-registry",
      "123.abc",
      "abc./abc",
      ".abc",
      "a--b",
      "a-.b",
      "_.abc",
      "Docker2/docker-registry",
      "Abc/Cba",
      "...",
      "a..b",
      "..a",
      "-",
      "_",
    ];
    for (const name of names) {
      const path = s.path(name);
      const content = randomContent(64);
      await suite.driver.putContent(path, content);
      assertSameBytes(await suite.driver.getContent(path), content, path);
      assert.equal((await suite.driver.stat(path)).size, 64, path);
    }
  });

  test("rejects invalid paths in every method with InvalidPathError", async (s) => {
    const existing = s.path("existing");
    const content = randomContent(16);
    await suite.driver.putContent(existing, content);
    const r = s.root;
    const invalid = [
      "",
      "abc",
      "abc/def",
      "123.abc",
      "//bcd",
      "/abc_123/",
      `${r}/`,
      `${r}//x`,
      `${r}/a/../b`,
      `${r}/./b`,
      `${r}/a/.`,
      `${r}/..`,
      `${r}/a/..`,
      `${r}/a b`,
      `${r}/a\tb`,
      `${r}/a\nb`,
      `${r}/a\u0000b`,
      `${r}/\u00e4`,
      `${r}/a\\b`,
      `${r}/a:b`,
      `${r}/a~b`,
      `${r}/a*`,
      `${r}/a%2Fb`,
      `${r}/a?b`,
      `${r}/a#b`,
      `${r}\\b`,
      "/.",
      "/..",
      "/../etc/passwd",
      "/a/../..",
      ` ${r}/a`,
    ];
    const calls: [string, (path: string) => Promise<unknown>][] = [
      ["getContent", (p) => suite.driver.getContent(p)],
      ["putContent", (p) => suite.driver.putContent(p, content)],
      ["reader", (p) => suite.driver.reader(p, 0)],
      ["writer(append=false)", (p) => suite.driver.writer(p, false)],
      ["writer(append=true)", (p) => suite.driver.writer(p, true)],
      ["stat", (p) => suite.driver.stat(p)],
      ["list", (p) => suite.driver.list(p)],
      ["move from", (p) => suite.driver.move(p, s.path("moved"))],
      ["move to", (p) => suite.driver.move(existing, p)],
      ["delete", (p) => suite.driver.delete(p)],
      ["redirectURL", (p) => suite.driver.redirectURL(p)],
      [
        "walk",
        (p) => suite.driver.walk(p, () => assert.fail(`walk(${JSON.stringify(p)}) called back`)),
      ],
    ];
    const rootOnly = new Set(["stat", "list", "walk"]);
    for (const [method, call] of calls) {
      const paths = rootOnly.has(method) ? invalid : [...invalid, "/"];
      for (const path of paths) {
        await rejectsWith(
          suite.driver,
          call(path),
          { code: InvalidPath, path },
          `${method}(${JSON.stringify(path)})`,
        );
      }
    }
    assertSameBytes(
      await suite.driver.getContent(existing),
      content,
      "the file used as a move source",
    );
    assert.deepEqual(await suite.driver.list(s.root), [existing], "nothing else was written");
  });
}
