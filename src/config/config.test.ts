import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { configError, minimalConfig } from "../testing/config.js";
import { loadConfig, parseConfig } from "./index.js";

describe("parseConfig", () => {
  it("reads a minimal config without warnings", () => {
    const config = parseConfig(minimalConfig, {});
    assert.equal(config.version, "0.1");
    assert.deepEqual(config.warnings, []);
  });

  it("warns about unknown keys and about distribution's keys Berth ignores, and still starts", () => {
    const config = parseConfig(
      `version: 0.1
loglevel: debug
colour: blue
storage:
  inmemory:
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      frequency: 1h
http:
  addr: 127.0.0.1:5000
  secret: s3cr3t
  http2:
    disabled: false
notifications:
  endpoints: []
health:
  storagedriver:
    enabled: true
  tcp:
    - addr: redis:6379
`,
      {},
    );
    assert.equal(config.log.level, "debug");
    const keys = config.warnings.map((warning) => warning.split(":")[0]);
    assert.deepEqual(keys.sort(), [
      "colour",
      "http.http2",
      "http.secret",
      "loglevel",
      "storage.maintenance.uploadpurging.frequency",
    ]);
    assert.match(
      config.warnings.find((w) => w.startsWith("colour"))!,
      /unknown key/,
    );
  });

  it("requires version 0.1", () => {
    assert.match(
      configError(() => parseConfig("storage: inmemory\n", {})).message,
      /version: is required/,
    );
    assert.match(
      configError(() => parseConfig("version: 0.2\nstorage: inmemory\n", {})).message,
      /version: unsupported version 0.2/,
    );
  });

  it("reports every problem at once, one line each", () => {
    const error = configError(() =>
      parseConfig(
        "version: 0.1\nstorage: inmemory\nlog:\n  level: loud\nhttp:\n  addr: nope\n",
        {},
      ),
    );
    assert.deepEqual(
      error.problems.map((problem) => problem.key),
      ["log.level", "http.addr"],
    );
    assert.equal(error.message.split("\n").length, 3);
  });

  it("reports YAML syntax errors with their line", () => {
    const error = configError(() => parseConfig("version: 0.1\nstorage:\n  inmemory: [a\n", {}));
    assert.match(error.message, /line \d+, column \d+: /);
    assert.match(configError(() => parseConfig("- a\n- b\n", {})).message, /must be a mapping/);
  });
});

describe("loadConfig", () => {
  it("reads a file, and without one gives filesystem storage in ./data on 127.0.0.1:5000 with deletes on", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-config-"));
    try {
      const file = join(directory, "config.yml");
      await writeFile(file, minimalConfig);
      assert.equal((await loadConfig(file, {})).storage.driver, "inmemory");
      await assert.rejects(
        loadConfig(join(directory, "missing.yml"), {}),
        /missing\.yml: cannot read the config file: no such file/,
      );
      await writeFile(file, "version: 0.1\nstorage: inmemory\nhttp:\n  addr: nope\n");
      await assert.rejects(loadConfig(file, {}), (error: Error) => {
        assert.match(error.message, /config\.yml: http\.addr: "nope" is not host:port/);
        return true;
      });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
    const defaults = await loadConfig(undefined, {});
    assert.equal(defaults.storage.driver, "filesystem");
    assert.deepEqual(defaults.storage.parameters, { rootdirectory: "./data" });
    assert.equal(defaults.http.addr, "127.0.0.1:5000");
    // The developer's registry answers every endpoint, deletes included; the environment can
    // still turn them off.
    assert.equal(defaults.storage.deleteEnabled, true);
    const noDeletes = await loadConfig(undefined, { REGISTRY_STORAGE_DELETE_ENABLED: "false" });
    assert.equal(noDeletes.storage.deleteEnabled, false);
  });
});
