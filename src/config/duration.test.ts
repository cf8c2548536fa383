import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatDuration, parseDuration } from "./index.js";

describe("Go durations", () => {
  it("parses Go durations to milliseconds", () => {
    assert.equal(parseDuration("168h"), 168 * 3_600_000);
    assert.equal(parseDuration("1h30m"), 90 * 60_000);
    assert.equal(parseDuration("10m"), 600_000);
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("2h45m0.5s"), 9_900_500);
    assert.equal(parseDuration("0"), 0);
    assert.equal(parseDuration("1000us"), 1);
    for (const bad of ["", "h", "10", "10x", "1h 30m", "ten minutes", "1h2"]) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
  });

  it("writes durations the way Go prints them", () => {
    assert.equal(formatDuration(168 * 3_600_000), "168h");
    assert.equal(formatDuration(90_500), "1m30.5s");
  });
});
