// The path rules of the driver contract and the small path helpers drivers share.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  comparePaths,
  isValidPath,
  isValidPathOrRoot,
  isWithin,
  joinPath,
  parentPath,
} from "./paths.js";

describe("paths", () => {
  it("accepts absolute paths of [A-Za-z0-9._-]+ components other than . and ..", () => {
    for (const path of ["/a", "/A/b-c/d_e/f.g", "/.abc", "/...", "/a..b", "/-", "/_", "/0/1/2"]) {
      assert.equal(isValidPath(path), true, path);
      assert.equal(isValidPathOrRoot(path), true, path);
    }
  });

  it("rejects relative, empty, dotted, doubled, trailing and foreign-character paths", () => {
    const invalid = [
      "",
      "a",
      "a/b",
      "/a/../b",
      "/a/./b",
      "/.",
      "/..",
      "/a/..",
      "/a//b",
      "//a",
      "/a/",
      "/a b",
      "/a~b",
      "/a\\b",
      "/ä",
      "/a\u0000",
      "/a\n",
    ];
    for (const path of invalid) {
      assert.equal(isValidPath(path), false, JSON.stringify(path));
      assert.equal(isValidPathOrRoot(path), false, JSON.stringify(path));
    }
    assert.equal(isValidPath(undefined as unknown as string), false);
  });

  it("accepts the root / only where the root is allowed", () => {
    assert.equal(isValidPath("/"), false);
    assert.equal(isValidPathOrRoot("/"), true);
  });

  it("joins, splits and compares paths", () => {
    assert.equal(parentPath("/a/b/c"), "/a/b");
    assert.equal(parentPath("/a"), "/");
    assert.equal(joinPath("/", "a"), "/a");
    assert.equal(joinPath("/a", "b"), "/a/b");
    assert.equal(isWithin("/a", "/a"), true);
    assert.equal(isWithin("/a", "/a/b"), true);
    assert.equal(isWithin("/a", "/ab"), false);
    assert.equal(isWithin("/", "/anything"), true);
    assert.ok(comparePaths("/B", "/a") < 0, "byte order: upper case first");
    assert.ok(comparePaths("/a-b", "/a.b") < 0);
    assert.equal(comparePaths("/a", "/a"), 0);
  });
});
