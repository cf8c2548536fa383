// The two walk helpers must agree: walkByListing (list + stat, for backends with directories) and
// walkFlatListing (one flat listing, for object stores) give the same paths in the same order for
// every way a callback can steer them.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FileInfo, WalkAction } from "./driver.js";
import { PathNotFoundError } from "./driver.js";
import { InMemoryDriver } from "./inmemory/index.js";
import { walkByListing, walkFlatListing } from "./walk.js";

const TREE = [
  "/A1",
  "/a",
  "/b/c",
  "/b/d/e",
  "/b/d/f",
  "/b/d-x/g",
  "/b/d.y",
  "/b-x",
  "/b.y/z",
  "/c/_/-/x",
];

async function buildTree(): Promise<InMemoryDriver> {
  const driver = new InMemoryDriver();
  for (const [index, path] of TREE.entries()) await driver.putContent(path, new Uint8Array(index));
  return driver;
}

type Steer = (info: FileInfo) => WalkAction | void;

async function byListing(driver: InMemoryDriver, root: string, steer: Steer): Promise<string[]> {
  const seen: string[] = [];
  await walkByListing(driver, root, (info) => {
    seen.push(`${info.path}${info.isDir ? "/" : ""}`);
    return steer(info);
  });
  return seen;
}

async function byFlatListing(
  driver: InMemoryDriver,
  root: string,
  steer: Steer,
): Promise<string[]> {
  // An object store lists in plain byte order, not the walk's; reversed, the order given is no help.
  const files: FileInfo[] = [];
  for (const path of TREE) {
    if (root === "/" || path.startsWith(`${root}/`)) files.push(await driver.stat(path));
  }
  files.reverse();
  const seen: string[] = [];
  await walkFlatListing(root, files, (info) => {
    seen.push(`${info.path}${info.isDir ? "/" : ""}`);
    return steer(info);
  });
  return seen;
}

describe("walk helpers", () => {
  it("walk depth first with children in lexical order, directories before their contents", async () => {
    const driver = await buildTree();
    assert.deepEqual(await byListing(driver, "/", () => {}), [
      "/A1",
      "/a",
      "/b/",
      "/b/c",
      "/b/d/",
      "/b/d/e",
      "/b/d/f",
      "/b/d-x/",
      "/b/d-x/g",
      "/b/d.y",
      "/b-x",
      "/b.y/",
      "/b.y/z",
      "/c/",
      "/c/_/",
      "/c/_/-/",
      "/c/_/-/x",
    ]);
  });

  it("agree on every root and on every skip and stop a callback can ask for", async () => {
    const driver = await buildTree();
    const everything = await byListing(driver, "/", () => {});
    const roots = ["/", "/b", "/b/d", "/c"];
    for (const root of roots) {
      const steers: [string, Steer][] = [["continue", () => "continue"]];
      for (const entry of everything) {
        const path = entry.replace(/\/$/, "");
        steers.push([`skip at ${entry}`, (info) => (info.path === path ? "skip" : undefined)]);
        steers.push([`stop at ${entry}`, (info) => (info.path === path ? "stop" : undefined)]);
      }
      for (const [what, steer] of steers) {
        assert.deepEqual(
          await byFlatListing(driver, root, steer),
          await byListing(driver, root, steer),
          `walk of ${root}, ${what}`,
        );
      }
    }
  });

  it("walkByListing passes over a path deleted between list and stat", async () => {
    const driver = await buildTree();
    const racing = {
      list: (path: string) => driver.list(path),
      stat: (path: string) =>
        path === "/a" ? Promise.reject(new PathNotFoundError("inmemory", path)) : driver.stat(path),
    };
    const seen: string[] = [];
    await walkByListing(racing, "/", (info) => {
      seen.push(info.path);
      return info.isDir ? "skip" : undefined;
    });
    assert.deepEqual(seen, ["/A1", "/b", "/b-x", "/b.y", "/c"]);
  });
});
