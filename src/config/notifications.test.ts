import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, parseConfig } from "./index.js";

function problems(yaml: string): string[] {
  try {
    parseConfig(`version: 0.1\nstorage: inmemory\n${yaml}`, {});
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems.map((problem) => problem.message);
  }
  return [];
}

describe("notifications config", () => {
  it("reads distribution's keys, with defaults and environment overrides", () => {
    const config = parseConfig(
      `version: 0.1
storage: inmemory
notifications:
  events:
    includereferences: yes
  spooldir: /var/lib/berth/spool
  endpoints:
    - name: hook
      url: http://hooks.example:8080/registry
      timeout: 500ms
      threshold: 3
      backoff: 2s
      ignore:
        actions: [pull, mount]
    - name: off
      url: http://other.example/
      disabled: true
`,
      { REGISTRY_NOTIFICATIONS_EVENTS_INCLUDEREFERENCES: "false" },
    );
    const { notifications } = config;
    assert.equal(notifications.includeReferences, false);
    assert.equal(notifications.spoolDirectory, "/var/lib/berth/spool");
    assert.deepEqual(notifications.endpoints[0], {
      name: "hook",
      url: "http://hooks.example:8080/registry",
      headers: {},
      timeoutMs: 500,
      threshold: 3,
      backoffMs: 2_000,
      ignoredMediaTypes: [],
      ignoredActions: ["pull", "mount"],
      disabled: false,
    });
    assert.equal(notifications.endpoints[1]!.disabled, true);
    assert.equal(notifications.endpoints[1]!.timeoutMs, 1_000, "default timeout");
    assert.equal(notifications.endpoints[1]!.threshold, 10, "default threshold");
    assert.equal(config.warnings.length, 0, config.warnings.join("\n"));
  });

  it("names each bad key, never echoing a URL that may carry credentials", () => {
    const messages = problems(`notifications:
  endpoints:
    - url: ftp://user:secret@example/
      timeout: soon
      ignore:
        actions: [pull, tag]
    - name: twice
      url: http://a.example/
    - name: twice
      url: http://b.example/
      headers: <http.Header>
  spooldir: relative/dir
`);
    const text = messages.join("\n");
    for (const key of [
      "notifications.endpoints[0].name: is required",
      "notifications.endpoints[0].url: is required and must be an http(s) URL",
      "notifications.endpoints[0].timeout",
      'notifications.endpoints[0].ignore.actions: unknown action "tag"',
      'notifications.endpoints[2].name: "twice" names two endpoints',
      "notifications.endpoints[2].headers: must be a mapping",
      "notifications.spooldir: must be an absolute path",
    ]) {
      assert.ok(text.includes(key), `no problem ${key} in:\n${text}`);
    }
    assert.doesNotMatch(text, /secret/);
  });
});
