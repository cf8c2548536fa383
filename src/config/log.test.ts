import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertProblems, minimalConfig } from "../testing/config.js";
import { parseConfig } from "./index.js";

describe("config log section", () => {
  it("defaults to info, json, no fields, access log on", () => {
    assert.deepEqual(parseConfig(minimalConfig, {}).log, {
      level: "info",
      formatter: "json",
      fields: {},
      accessLog: true,
    });
  });

  it("reads level, formatter, fields and accesslog", () => {
    const config = parseConfig(
      `${minimalConfig}log:
  level: debug
  formatter: text
  fields:
    service: registry
  accesslog:
    disabled: true
`,
      {},
    );
    assert.deepEqual(config.log, {
      level: "debug",
      formatter: "text",
      fields: { service: "registry" },
      accessLog: false,
    });
    assert.deepEqual(config.warnings, []);
  });

  it("takes the deprecated loglevel with a warning, and logstash as json", () => {
    const config = parseConfig(
      `${minimalConfig}loglevel: debug\nlog:\n  formatter: logstash\n`,
      {},
    );
    assert.equal(config.log.level, "debug");
    assert.equal(config.log.formatter, "json");
    assert.deepEqual(config.warnings.map((warning) => warning.split(":")[0]).sort(), [
      "log.formatter",
      "loglevel",
    ]);
  });

  it("names the offending key of an invalid value", () => {
    assertProblems([
      ["log.level", "log:\n  level: loud\n", /must be one of error, warn, info, debug, got "loud"/],
      ["log.formatter", "log:\n  formatter: xml\n", /must be one of json, text, logstash/],
      ["log.accesslog.disabled", "log:\n  accesslog:\n    disabled: 2\n", /true or false/],
    ]);
  });
});
