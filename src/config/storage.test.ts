import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertProblems, configError, minimalConfig, testDriverName } from "../testing/config.js";
import { parseConfig } from "./index.js";

describe("config storage section", () => {
  it("fills in distribution's defaults", () => {
    const config = parseConfig(minimalConfig, {});
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
    assert.deepEqual(config.storage.gc, {
      enabled: false,
      intervalMs: 24 * 3_600_000,
      delayMs: 3_600_000,
      untagged: false,
      dryRun: false,
    });
  });

  it("reads storage.maintenance.gc", () => {
    const config = parseConfig(
      "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    gc:\n      enabled: true\n" +
        "      interval: 10m\n      delay: 30s\n      untagged: true\n      dryrun: true\n",
      {},
    );
    assert.deepEqual(config.storage.gc, {
      enabled: true,
      intervalMs: 600_000,
      delayMs: 30_000,
      untagged: true,
      dryRun: true,
    });
  });

  it("reads the driver's section, delete, redirect and maintenance", () => {
    const config = parseConfig(
      `version: 0.1
storage:
  ${testDriverName}:
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
`,
      {},
    );
    assert.equal(config.storage.driver, testDriverName);
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
    assert.deepEqual(config.warnings, []);
  });

  it("takes `storage: <driver>` as a driver without parameters", () => {
    const config = parseConfig("version: 0.1\nstorage: inmemory\n", {});
    assert.equal(config.storage.driver, "inmemory");
    assert.deepEqual(config.storage.parameters, {});
  });

  it("requires exactly one known storage driver", () => {
    assert.match(
      configError(() => parseConfig("version: 0.1\nstorage:\n  delete:\n    enabled: true\n", {}))
        .message,
      /storage: no storage driver configured; name one of: .*inmemory/,
    );
    assert.match(
      configError(() =>
        parseConfig(`version: 0.1\nstorage:\n  inmemory:\n  ${testDriverName}:\n`, {}),
      ).message,
      /storage: must name exactly one storage driver, found inmemory, configtest/,
    );
    assert.match(
      configError(() => parseConfig("version: 0.1\nstorage:\n  floppy:\n    drive: a\n", {}))
        .message,
      /storage\.floppy: unknown storage driver; registered: .*inmemory.*; no executable registry-storage-floppy on PATH/,
    );
  });

  it("names the offending key of an invalid value", () => {
    assertProblems([
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
      [
        "storage.maintenance.gc.delay",
        "storage:\n  inmemory:\n  maintenance:\n    gc:\n      enabled: true\n      delay: 0s\n",
        /more than 0 while the registry serves/,
      ],
      [
        "storage.maintenance.gc.interval",
        "storage:\n  inmemory:\n  maintenance:\n    gc:\n      interval: 0s\n",
        /more than 0/,
      ],
      ["storage.inmemory", "storage:\n  inmemory: [1, 2]\n", /must be a mapping/],
    ]);
  });

  it("passes the s3 and azure sections through as the drivers' parameters", () => {
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
