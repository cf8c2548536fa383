import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { InMemoryDriver, registerDriver } from "../driver/index.js";
import {
  ConfigError,
  formatDuration,
  loadConfig,
  parseAddress,
  parseConfig,
  parseDuration,
  resolveConfig,
} from "./index.js";

// A driver of this test's own, so parameter pass-through does not depend on a real backend.
registerDriver("configtest", () => new InMemoryDriver());

const minimal = "version: 0.1\nstorage:\n  inmemory:\n";

/** The ConfigError `action` throws. */
function configError(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a ConfigError");
}

describe("parseConfig", () => {
  it("fills in distribution's defaults", () => {
    const config = parseConfig(minimal, {});
    assert.equal(config.version, "0.1");
    assert.deepEqual(config.log, { level: "info", formatter: "json", fields: {}, accessLog: true });
    assert.equal(config.storage.driver, "inmemory");
    assert.deepEqual(config.storage.parameters, {});
    assert.equal(config.storage.deleteEnabled, false);
    assert.equal(config.storage.redirect, true);
    assert.equal(config.storage.readOnly, false);
    assert.deepEqual(config.storage.uploadPurging, {
      enabled: true,
      ageMs: 168 * 3_600_000,
      intervalMs: 24 * 3_600_000,
      dryRun: false,
    });
    assert.deepEqual(
      { addr: config.http.addr, hostname: config.http.hostname, port: config.http.port },
      { addr: "127.0.0.1:5000", hostname: "127.0.0.1", port: 5000 },
    );
    assert.equal(config.http.prefix, "");
    assert.equal(config.http.host, undefined);
    assert.equal(config.http.tls, undefined);
    assert.equal(config.http.drainTimeoutMs, 10_000);
    assert.deepEqual(config.warnings, []);
  });

  it("reads every supported key of a distribution config.yml", () => {
    const config = parseConfig(
      `version: 0.1
log:
  level: debug
  formatter: text
  fields:
    service: registry
  accesslog:
    disabled: true
storage:
  configtest:
    bucket: images
    secure: false
    chunksize: 5242880
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: true
      age: 1h30m
      interval: 10m
      dryrun: true
    readonly:
      enabled: true
http:
  addr: :5001
  host: https://registry.example.com/
  prefix: /registry/
  draintimeout: 30s
  tls:
    certificate: /etc/berth/cert.pem
    key: /etc/berth/key.pem
    clientcas: [/etc/berth/ca.pem]
    minimumtls: tls1.3
  headers:
    X-Content-Type-Options: [nosniff]
    Strict-Transport-Security: max-age=63072000
`,
      {},
    );
    assert.deepEqual(config.log, {
      level: "debug",
      formatter: "text",
      fields: { service: "registry" },
      accessLog: false,
    });
    assert.equal(config.storage.driver, "configtest");
    assert.deepEqual(config.storage.parameters, {
      bucket: "images",
      secure: false,
      chunksize: 5242880,
    });
    assert.equal(config.storage.deleteEnabled, true);
    assert.equal(config.storage.redirect, false);
    assert.equal(config.storage.readOnly, true);
    assert.deepEqual(config.storage.uploadPurging, {
      enabled: true,
      ageMs: 90 * 60_000,
      intervalMs: 10 * 60_000,
      dryRun: true,
    });
    assert.equal(config.http.hostname, "");
    assert.equal(config.http.port, 5001);
    assert.equal(config.http.host, "https://registry.example.com");
    assert.equal(config.http.prefix, "/registry");
    assert.equal(config.http.drainTimeoutMs, 30_000);
    assert.deepEqual(config.http.tls, {
      certificate: "/etc/berth/cert.pem",
      key: "/etc/berth/key.pem",
      clientCAs: ["/etc/berth/ca.pem"],
      minVersion: "TLSv1.3",
    });
    assert.deepEqual(config.http.headers, {
      "X-Content-Type-Options": ["nosniff"],
      "Strict-Transport-Security": ["max-age=63072000"],
    });
    assert.deepEqual(config.warnings, []);
  });

  it("takes `storage: <driver>` as a driver without parameters", () => {
    const config = parseConfig("version: 0.1\nstorage: inmemory\n", {});
    assert.equal(config.storage.driver, "inmemory");
    assert.deepEqual(config.storage.parameters, {});
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
  debug:
    addr: :5001
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
      "health.tcp",
      "http.debug",
      "http.secret",
      "loglevel",
      "notifications",
      "storage.cache",
      "storage.maintenance.uploadpurging.frequency",
    ]);
    assert.match(
      config.warnings.find((w) => w.startsWith("colour"))!,
      /unknown key/,
    );
  });

  it("names the offending key of an invalid value", () => {
    const cases: [string, string, RegExp][] = [
      ["http.addr", "http:\n  addr: nope\n", /^http\.addr: "nope" is not host:port$/],
      ["http.addr", "http:\n  addr: 127.0.0.1:99999\n", /not host:port/],
      ["log.level", "log:\n  level: loud\n", /must be one of error, warn, info, debug, got "loud"/],
      ["log.formatter", "log:\n  formatter: xml\n", /must be one of json, text, logstash/],
      [
        "storage.delete.enabled",
        "storage:\n  inmemory:\n  delete:\n    enabled: maybe\n",
        /true or false/,
      ],
      [
        "storage.maintenance.uploadpurging.age",
        "storage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      age: 7 days\n",
        /"7 days" is not a duration/,
      ],
      [
        "storage.maintenance.uploadpurging.interval",
        "storage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n      interval: 0s\n",
        /more than 0/,
      ],
      ["http.prefix", "http:\n  prefix: registry\n", /must be a path starting with "\/"/],
      ["http.host", "http:\n  host: registry.example.com\n", /is not an http\(s\) URL/],
      [
        "http.tls.key",
        "http:\n  tls:\n    certificate: /c.pem\n",
        /is required with http.tls.certificate/,
      ],
      ["http.headers.X-Bad", "http:\n  headers:\n    X-Bad: {a: b}\n", /must be a list of strings/],
      ["http.net", "http:\n  net: unix\n", /must be one of tcp/],
      ["storage.inmemory", "storage:\n  inmemory: [1, 2]\n", /must be a mapping/],
    ];
    for (const [key, yaml, message] of cases) {
      const storage = yaml.includes("storage:") ? "" : "storage: inmemory\n";
      const error = configError(() => parseConfig(`version: 0.1\n${storage}${yaml}`, {}));
      assert.deepEqual(
        error.problems.map((problem) => problem.key),
        [key],
        `${key}: ${error.message}`,
      );
      assert.match(error.problems[0]!.message, message);
      assert.ok(error.message.includes(key));
    }
  });

  it("requires version 0.1 and exactly one known storage driver", () => {
    assert.match(
      configError(() => parseConfig("storage: inmemory\n", {})).message,
      /version: is required/,
    );
    assert.match(
      configError(() => parseConfig("version: 0.2\nstorage: inmemory\n", {})).message,
      /version: unsupported version 0.2/,
    );
    assert.match(
      configError(() => parseConfig("version: 0.1\nstorage:\n  delete:\n    enabled: true\n", {}))
        .message,
      /storage: no storage driver configured; name one of: .*inmemory/,
    );
    assert.match(
      configError(() => parseConfig("version: 0.1\nstorage:\n  inmemory:\n  configtest:\n", {}))
        .message,
      /storage: must name exactly one storage driver, found inmemory, configtest/,
    );
    assert.match(
      configError(() => parseConfig("version: 0.1\nstorage:\n  floppy:\n    drive: a\n", {}))
        .message,
      /storage\.floppy: unknown storage driver; registered: .*inmemory/,
    );
  });

  it("refuses an auth section rather than serve unauthenticated", () => {
    const error = configError(() =>
      parseConfig(
        "version: 0.1\nstorage: inmemory\nauth:\n  htpasswd:\n    realm: r\n    path: /p\n",
        {},
      ),
    );
    assert.deepEqual(
      error.problems.map((problem) => problem.key),
      ["auth"],
    );
    assert.match(error.message, /authentication is not supported/);
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
    const error = configError(() =>
      parseConfig("version: 0.1\nstorage:\n  inmemory:\n  inmemory:\n", {}),
    );
    assert.match(error.message, /line \d+, column \d+: Map keys must be unique/);
    assert.match(configError(() => parseConfig("- a\n- b\n", {})).message, /must be a mapping/);
  });
});

describe("environment overrides", () => {
  const fileConfig = `version: 0.1
storage:
  configtest:
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

describe("loadConfig", () => {
  it("reads a file, and without one gives filesystem storage in ./data on 127.0.0.1:5000 with deletes on", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-config-"));
    try {
      const file = join(directory, "config.yml");
      await writeFile(file, minimal);
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

describe("Go durations and addresses", () => {
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
    assert.equal(formatDuration(168 * 3_600_000), "168h");
    assert.equal(formatDuration(90_500), "1m30.5s");
  });

  it("splits host:port", () => {
    assert.deepEqual(parseAddress(":5000"), { hostname: "", port: 5000 });
    assert.deepEqual(parseAddress("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
    assert.deepEqual(parseAddress("[::1]:5000"), { hostname: "::1", port: 5000 });
    assert.deepEqual(parseAddress("registry.local:443"), { hostname: "registry.local", port: 443 });
    for (const bad of ["nope", "5000", "::1:5000", "host:port", "[nope]:1", "a b:1", "h:70000"]) {
      assert.equal(parseAddress(bad), undefined, bad);
    }
  });
});

describe("driver sections", () => {
  it("pass the s3 and azure sections through as the drivers' parameters", () => {
    const s3 = parseConfig("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n", {
      REGISTRY_STORAGE: "s3",
      REGISTRY_STORAGE_S3_BUCKET: "images",
      REGISTRY_STORAGE_S3_REGION: "us-east-1",
      REGISTRY_STORAGE_S3_REGIONENDPOINT: "http://127.0.0.1:7480",
      REGISTRY_STORAGE_S3_FORCEPATHSTYLE: "true",
    });
    assert.equal(s3.storage.driver, "s3");
    assert.deepEqual(s3.storage.parameters, {
      bucket: "images",
      region: "us-east-1",
      regionendpoint: "http://127.0.0.1:7480",
      forcepathstyle: "true",
    });
    const azure = parseConfig(
      "version: 0.1\nstorage:\n  azure:\n    accountname: devstoreaccount1\n    container: registry\n",
      {},
    );
    assert.equal(azure.storage.driver, "azure");
    assert.deepEqual(azure.storage.parameters, {
      accountname: "devstoreaccount1",
      container: "registry",
    });
  });
});
