// Request ids: version 4 UUIDs, different for every request, across refills of the random bytes.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requestId } from "./requests.js";

describe("request ids", () => {
  it("are random version 4 UUIDs, all different", () => {
    const seen = new Set<string>();
    // More than the 256 ids of one batch of random bytes.
    for (let i = 0; i < 2000; i++) {
      const id = requestId();
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 2000);
    // Every hex digit turns up in every random position (so no position is stuck).
    const digits = [...seen].map((id) => id.replaceAll("-", ""));
    for (let position = 0; position < 32; position++) {
      if (position === 12 || position === 16) continue;
      const found = new Set(digits.map((id) => id[position]));
      assert.equal(found.size, 16, `position ${position}`);
    }
  });
});
