// Reading driver parameters: typed values from YAML and strings from environment overrides, with
// errors that name the driver, the parameter and the bad value.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DriverErrorCode, InvalidParameterError } from "./driver.js";
import { ParameterReader } from "./parameters.js";

function rejects(read: () => unknown, parameter: string, mentions?: string): void {
  assert.throws(read, (error) => {
    assert.ok(error instanceof InvalidParameterError, String(error));
    assert.equal(error.code, DriverErrorCode.InvalidParameter);
    assert.equal(error.parameter, parameter);
    assert.equal(error.driverName, "test");
    assert.ok(error.message.includes(parameter), error.message);
    if (mentions !== undefined) assert.ok(error.message.includes(mentions), error.message);
    return true;
  });
}

describe("ParameterReader", () => {
  it("reads required and optional strings; empty and null count as missing", () => {
    const reader = new ParameterReader("test", { name: "x", port: 5000, empty: "", nothing: null });
    assert.equal(reader.requiredString("name"), "x");
    assert.equal(reader.requiredString("port"), "5000");
    assert.equal(reader.optionalString("absent"), undefined);
    assert.equal(reader.optionalString("empty"), undefined);
    assert.equal(reader.optionalString("nothing"), undefined);
    rejects(() => reader.requiredString("absent"), "absent", "required");
    rejects(() => reader.requiredString("empty"), "empty", "required");
    rejects(
      () => new ParameterReader("test", { list: ["a"] }).optionalString("list"),
      "list",
      '["a"]',
    );
  });

  it("reads booleans from YAML and from strings", () => {
    const reader = new ParameterReader("test", {
      a: true,
      b: "FALSE",
      c: " true ",
      d: "maybe",
      e: "Yes",
      f: "off",
    });
    assert.equal(reader.boolean("a", false), true);
    assert.equal(reader.boolean("e", false), true);
    assert.equal(reader.boolean("f", true), false);
    assert.equal(reader.boolean("b", true), false);
    assert.equal(reader.boolean("c", false), true);
    assert.equal(reader.boolean("absent", true), true);
    rejects(() => reader.boolean("d", false), "d", '"maybe"');
  });

  it("reads whole numbers within bounds from numbers and strings", () => {
    const reader = new ParameterReader("test", { n: 42, s: " 7 ", f: "4.2", low: -1, high: 11 });
    assert.equal(reader.integer("n", 0), 42);
    assert.equal(reader.integer("s", 0), 7);
    assert.equal(reader.integer("absent", 3), 3);
    rejects(() => reader.integer("f", 0), "f", '"4.2"');
    rejects(() => reader.integer("low", 0), "low", "at least 0");
    rejects(() => reader.integer("high", 0, 1, 10), "high", "from 1 to 10");
  });

  it("reads one of a set of choices, whatever its case", () => {
    const reader = new ParameterReader("test", { tier: "Hot", lower: "cool", bad: "Warm" });
    assert.equal(reader.oneOf("tier", ["Hot", "Cool"], "Cool"), "Hot");
    assert.equal(reader.oneOf("lower", ["Hot", "Cool"], "Hot"), "Cool");
    assert.equal(reader.oneOf("absent", ["Hot", "Cool"], "Cool"), "Cool");
    rejects(() => reader.oneOf("bad", ["Hot", "Cool"], "Cool"), "bad", "Hot, Cool");
  });
});
