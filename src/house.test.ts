// The rules issue 10 set for the source tree, read from the TypeScript sources (not dist/): a
// product file over 400 lines says why at its top, and the API reaches the storage layer through
// its index only and never imports the server or test support.

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const source = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src");

const MAX_LINES = 400;
const REASON = "// Over 400 lines: ";

/** The product's TypeScript files under src/ (no tests, no test support), relative to src/. */
async function productFiles(): Promise<string[]> {
  const entries = await readdir(source, { recursive: true });
  return entries
    .filter((path) => path.endsWith(".ts") && !path.endsWith(".test.ts"))
    .filter((path) => !path.startsWith("testing/") && !path.endsWith(".d.ts"))
    .sort();
}

describe("the source tree", () => {
  it(`has no product file over ${MAX_LINES} lines without a one-line reason at its top`, async () => {
    const files = await productFiles();
    assert.ok(files.length > 50, `only ${files.length} product files found under ${source}`);
    const unexplained: string[] = [];
    for (const path of files) {
      const text = await readFile(join(source, path), "utf8");
      const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
      if (lines > MAX_LINES && !text.startsWith(REASON)) unexplained.push(`${path} (${lines})`);
    }
    assert.deepEqual(unexplained, [], `start these with "${REASON}<why>"`);
  });

  it("keeps the API's imports to the storage index, away from the server and test support", async () => {
    const files = (await productFiles()).filter((path) => path.startsWith("api/"));
    assert.ok(files.length > 5, `only ${files.length} API files found`);
    const wrong: string[] = [];
    for (const path of files) {
      const text = await readFile(join(source, path), "utf8");
      for (const [, target] of text.matchAll(/from "(\.[^"]+)"/g)) {
        // The module imported, relative to src/.
        const module = posix.join(posix.dirname(path), target!);
        const allowed =
          !/^(server|testing)\//.test(module) &&
          (!module.startsWith("storage/") || module === "storage/index.js");
        if (!allowed) wrong.push(`${path}: ${target}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});
