// The catalog over every test driver: sorted, paginated, and reading only what a small page needs.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { content, pushBlob } from "../testing/images.js";
import { STORAGE_TEST_DRIVERS, createTestDriver } from "../testing/storage-drivers.js";
import { createRegistryStorage } from "./index.js";

describe("catalog", () => {
  for (const driverName of STORAGE_TEST_DRIVERS) {
    it(`lists repositories sorted by name, paginated, over ${driverName}`, async () => {
      const test = await createTestDriver(driverName);
      try {
        const reg = createRegistryStorage(test.driver);
        const names = [
          "a",
          "a-b",
          "a.b",
          "a/b",
          "a/b/c",
          "a_b",
          "a__b",
          "b",
          "a/b-c",
          "a/b.c",
          "z/y/x",
          "a0",
          "a/a",
        ];
        const blob = content("application/octet-stream", Buffer.from("catalog"));
        for (const name of names) await pushBlob(reg.repository(name), blob);
        // An upload alone does not make a repository (as in distribution).
        await reg.repository("uploads/only").blobs.startUpload();
        const sorted = [...names].sort();
        assert.deepEqual(await reg.catalog(), sorted);
        for (let n = 1; n <= 4; n++) {
          const pages: string[] = [];
          let last: string | undefined;
          for (;;) {
            const page = await reg.catalog(n, last);
            assert.ok(page.length <= n);
            pages.push(...page);
            if (page.length < n) break;
            last = page.at(-1);
          }
          assert.deepEqual(pages, sorted, `pages of ${n}`);
        }
        assert.deepEqual(await reg.catalog(2, "a/b"), ["a/b-c", "a/b.c"]);
        assert.deepEqual(await reg.catalog(3, "a-a"), ["a-b", "a.b", "a/a"]);
        assert.deepEqual(await reg.catalog(5, "z"), ["z/y/x"]);
        assert.deepEqual(await reg.catalog(0), []);
        assert.equal(await reg.repositoryExists("a/b"), true);
        assert.equal(await reg.repositoryExists("uploads/only"), false);
        assert.equal(await reg.repositoryExists("z/y"), false);
        await reg.checkHealth();
      } finally {
        await test.cleanup();
      }
    });
  }

  it("reads only the directories a small page needs", async () => {
    const test = await createTestDriver("inmemory");
    const reg = createRegistryStorage(test.driver);
    const blob = content("application/octet-stream", Buffer.from("catalog"));
    for (const name of ["a/x", "b/x", "c/x", "d/x", "e/x"])
      await pushBlob(reg.repository(name), blob);
    const listed: string[] = [];
    const counting = new Proxy(test.driver, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (property !== "list")
          return typeof value === "function" ? (value as () => unknown).bind(target) : value;
        return (path: string) => {
          listed.push(path);
          return target.list(path);
        };
      },
    });
    assert.deepEqual(await createRegistryStorage(counting).catalog(1, "b/x"), ["c/x"]);
    // `b/x` itself is listed: a repository may have repositories below it (`b/x/y`).
    assert.ok(!listed.some((path) => /\/(a|d|e)(\/x)?$/.test(path)), listed.join(" "));
  });
});
