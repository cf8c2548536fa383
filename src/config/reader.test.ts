// The config's own keys and the drivers' parameters are read by the same value rules
// (src/driver/parameters.ts): the config collects every problem, a driver throws at the first.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidParameterError, ParameterReader } from "../driver/index.js";
import { ConfigReader } from "./reader.js";

describe("ConfigReader", () => {
  it("reads values as a driver's ParameterReader does, collecting the problems", () => {
    const values = { yes: "TRUE", no: false, maybe: "maybe", text: 12, list: ["a"], tier: " HOT " };
    const config = new ConfigReader(new Map([["maybe", "REGISTRY_MAYBE"]]));
    const driver = new ParameterReader("test", values);

    assert.equal(config.boolean(values.yes, "yes", false), true);
    assert.equal(driver.boolean("yes", false), true);
    assert.equal(config.boolean(values.no, "no", true), false);
    assert.equal(driver.boolean("no", true), false);
    assert.equal(config.string(values.text, "text"), "12");
    assert.equal(driver.optionalString("text"), "12");
    assert.equal(config.oneOf(values.tier, "tier", ["hot", "cool"], "cool"), "hot");
    assert.equal(driver.oneOf("tier", ["hot", "cool"], "cool"), "hot");

    assert.equal(config.boolean(values.maybe, "maybe", true), true, "the fallback");
    assert.throws(() => driver.boolean("maybe", true), /must be true or false, got "maybe"/);
    assert.equal(config.string(values.list, "list"), undefined);
    assert.throws(() => driver.optionalString("list"), InvalidParameterError);
    assert.deepEqual(config.problems, [
      { key: "maybe", message: 'maybe (REGISTRY_MAYBE): must be true or false, got "maybe"' },
      { key: "list", message: 'list: must be a string, got ["a"]' },
    ]);
  });
});
