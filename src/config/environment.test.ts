import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { configError, testDriverName } from "../testing/config.js";
import { parseConfig, resolveConfig } from "./index.js";

describe("environment overrides", () => {
  const fileConfig = `version: 0.1
storage:
  ${testDriverName}:
    rootdirectory: /var/lib/registry
  delete:
    enabled: false
http:
  addr: :5000
`;

  it("set keys by their upper-case path, as distribution's REGISTRY_* variables do", () => {
    const config = parseConfig(fileConfig, {
      REGISTRY_STORAGE_CONFIGTEST_ROOTDIRECTORY: "/srv/registry",
      REGISTRY_STORAGE_CONFIGTEST_MAXTHREADS: "50",
      REGISTRY_STORAGE_DELETE_ENABLED: "true",
      REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE: "2h",
      REGISTRY_HTTP_ADDR: "0.0.0.0:6000",
      "REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS": "[nosniff]",
      REGISTRY_LOG_LEVEL: "debug",
      PATH: "/usr/bin",
    });
    assert.deepEqual(config.storage.parameters, {
      rootdirectory: "/srv/registry",
      maxthreads: "50",
    });
    assert.equal(config.storage.deleteEnabled, true);
    assert.equal(config.storage.uploadPurging.ageMs, 2 * 3_600_000);
    assert.equal(config.http.addr, "0.0.0.0:6000");
    assert.deepEqual(config.http.headers, { "x-content-type-options": ["nosniff"] });
    assert.equal(config.log.level, "debug");
  });

  it("REGISTRY_STORAGE selects the driver; its parameters follow; delete and maintenance stay", () => {
    const config = parseConfig(fileConfig, {
      REGISTRY_STORAGE_INMEMORY_UNUSED: "x",
      REGISTRY_STORAGE: "inmemory",
    });
    assert.equal(config.storage.driver, "inmemory");
    assert.deepEqual(config.storage.parameters, { unused: "x" });
    assert.equal(config.storage.deleteEnabled, false);
  });

  it("keep values as strings, so secrets are never turned into numbers", () => {
    const config = parseConfig(fileConfig, { REGISTRY_STORAGE_CONFIGTEST_SECRETKEY: "0123e4" });
    assert.equal(config.storage.parameters.secretkey, "0123e4");
  });

  it("name the variable when its value is invalid", () => {
    const error = configError(() => parseConfig(fileConfig, { REGISTRY_HTTP_ADDR: "nope" }));
    assert.equal(
      error.problems[0]!.message,
      'http.addr (REGISTRY_HTTP_ADDR): "nope" is not host:port',
    );
  });

  it("warn about variables that match no key", () => {
    const config = parseConfig(fileConfig, { REGISTRY_PORT: "tcp://10.0.0.1:5000" });
    assert.deepEqual(config.warnings, ["port (REGISTRY_PORT): unknown key, ignored"]);
  });

  it("apply to resolveConfig only when given", () => {
    const tree = { version: "0.1", storage: { inmemory: {} }, http: { addr: "127.0.0.1:0" } };
    assert.equal(resolveConfig(tree).http.port, 0);
    assert.equal(resolveConfig(tree, { REGISTRY_HTTP_ADDR: "127.0.0.1:7000" }).http.port, 7000);
    assert.deepEqual(tree.http, { addr: "127.0.0.1:0" }, "the caller's object is not changed");
  });
});
