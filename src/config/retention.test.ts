import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig, parseRetentionDuration, parseSize } from "./index.js";
import { assertProblems, minimalConfig } from "../testing/config.js";

describe("storage.retention, storage.tags.immutable, storage.quotas", () => {
  it("reads the shapes of issue 19", () => {
    const config = parseConfig(
      `${minimalConfig}  retention:
    interval: 12h
    dryrun: true
    policies:
      - repositories: ["team-a/**"]
        keep:
          mostRecent: 10
          patterns: ["^v\\\\d+"]
          pushedWithin: 30d
          pulledWithin: 14d
        deleteUntagged: true
  tags:
    immutable: ["^v\\\\d+\\\\.\\\\d+\\\\.\\\\d+$"]
  quotas:
    - repositories: ["team-a/**", "team-b/*"]
      bytes: 50GiB
    - repositories: ["x"]
      bytes: 1000
`,
      {},
    );
    assert.deepEqual(config.warnings, []);
    assert.deepEqual(config.storage.retention, {
      intervalMs: 12 * 3_600_000,
      dryRun: true,
      policies: [
        {
          repositories: ["team-a/**"],
          keep: {
            mostRecent: 10,
            patterns: ["^v\\d+"],
            pushedWithinMs: 30 * 86_400_000,
            pulledWithinMs: 14 * 86_400_000,
          },
          deleteUntagged: true,
        },
      ],
    });
    assert.deepEqual(config.storage.immutableTags, ["^v\\d+\\.\\d+\\.\\d+$"]);
    assert.deepEqual(config.storage.quotas, [
      { repositories: ["team-a/**", "team-b/*"], bytes: 50 * 1024 ** 3 },
      { repositories: ["x"], bytes: 1000 },
    ]);
  });

  it("defaults to no policy, no immutable tag and no quota", () => {
    const { storage } = parseConfig(minimalConfig, {});
    assert.deepEqual(storage.retention, { intervalMs: 86_400_000, dryRun: false, policies: [] });
    assert.deepEqual(storage.immutableTags, []);
    assert.deepEqual(storage.quotas, []);
  });

  it("parses sizes and durations", () => {
    assert.equal(parseSize("512MiB"), 512 * 1024 ** 2);
    assert.equal(parseSize("1.5 KiB"), 1536);
    assert.equal(parseSize("2TiB"), 2 * 1024 ** 4);
    assert.equal(parseSize(42), 42);
    assert.equal(parseSize("5 GB"), undefined);
    assert.equal(parseSize(-1), undefined);
    assert.equal(parseRetentionDuration("1d12h"), 36 * 3_600_000);
    assert.equal(parseRetentionDuration("90m"), 90 * 60_000);
    assert.equal(parseRetentionDuration("3 days"), undefined);
  });

  it("names the key of each bad value", () => {
    const prefix = `${minimalConfig}`;
    assertProblems([
      [
        "storage.quotas[0].bytes",
        `${prefix}  quotas:\n    - repositories: [a]\n      bytes: 5GB\n`,
        /"5GB" is not a size/,
      ],
      ["storage.quotas[0].repositories", `${prefix}  quotas:\n    - bytes: 5GiB\n`, /is required/],
      [
        "storage.tags.immutable[0]",
        `${prefix}  tags:\n    immutable: ["(v"]\n`,
        /not a regular expression/,
      ],
      [
        "storage.retention.policies[0].keep.pushedWithin",
        `${prefix}  retention:\n    policies:\n      - repositories: [a]\n        keep:\n          pushedWithin: soon\n`,
        /"soon" is not a duration/,
      ],
      [
        "storage.retention.policies[0].keep.mostRecent",
        `${prefix}  retention:\n    policies:\n      - repositories: [a]\n        keep:\n          mostRecent: -2\n`,
        /whole number/,
      ],
    ]);
  });

  it("warns about unknown keys in the new sections", () => {
    const { warnings } = parseConfig(
      `${minimalConfig}  retention:\n    policies:\n      - repositories: [a]\n        keep:\n          newest: 3\n`,
      {},
    );
    assert.deepEqual(warnings, ["storage.retention.policies[0].keep.newest: unknown key, ignored"]);
  });
});
