import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { boundedCache } from "./cache.js";

describe("boundedCache", () => {
  it("grows its tables as it fills and still forgets the least recently used entry at capacity", () => {
    const cache = boundedCache<string, number>(5000);
    for (let i = 0; i < 5000; i++) cache.set(`k${i}`, i);
    // Used last, so k0 is the most recent now and k1 the least.
    assert.equal(cache.get("k0"), 0);
    cache.set("new", -1);
    assert.equal(cache.get("k1"), undefined);
    assert.equal(cache.get("k0"), 0);
    assert.equal(cache.get("k4999"), 4999);
    assert.equal(cache.get("new"), -1);
    assert.equal(cache.delete("k2"), true);
    assert.equal(cache.get("k2"), undefined);
  });

  it("keeps what is left of each entry's time to live when it grows", async () => {
    const cache = boundedCache<string, number>(3000, 60_000);
    cache.set("short", 1, { ttl: 1000 });
    // Past 1,024 and 8,192 would be the capacity: two growths.
    for (let i = 0; i < 2000; i++) cache.set(`k${i}`, i);
    assert.equal(cache.get("short"), 1);
    await sleep(1100);
    assert.equal(cache.get("short"), undefined);
    assert.equal(cache.get("k1999"), 1999);
  });
});
