// Configs distribution serves (issue 11, defect 10): repeated keys, YAML 1.1 booleans, misspelled
// driver parameters and keys that look like security sections.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { configError } from "../testing/config.js";
import { parseConfig } from "./index.js";

const filesystem = "storage:\n  filesystem:\n    rootdirectory: /tmp/berth-unused\n";

describe("configs distribution serves", () => {
  it("accepts a repeated key as Go's yaml.v2 does (the later value), warning with key and line", () => {
    const config = parseConfig(
      `version: 0.1
storage:
  inmemory:
  delete:
    enabled: false
  delete:
    enabled: true
middleware:
  storage:
    - name: cloudfront
  storage:
    - name: redirect
`,
      {},
    );
    assert.equal(config.storage.deleteEnabled, true);
    const repeated = config.warnings.filter((warning) => /repeated/.test(warning));
    assert.deepEqual(repeated.map((warning) => warning.split(":")[0]).sort(), [
      "middleware.storage",
      "storage.delete",
    ]);
    assert.match(
      repeated.find((w) => w.startsWith("storage.delete"))!,
      /line 6\b/,
    );
    assert.match(
      repeated.find((w) => w.startsWith("middleware.storage"))!,
      /line 11\b/,
    );
  });

  it("reads yes/no/on/off (and y/n) as booleans, in the file and in REGISTRY_* overrides", () => {
    for (const [word, expected] of [
      ["yes", true],
      ["Yes", true],
      ["on", true],
      ["ON", true],
      ["y", true],
      ["no", false],
      ["off", false],
      ["Off", false],
      ["n", false],
    ] as const) {
      const fromFile = parseConfig(
        `version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: ${word}\n` +
          `  maintenance:\n    readonly:\n      enabled: ${word}\n`,
        {},
      );
      assert.equal(fromFile.storage.deleteEnabled, expected, word);
      assert.equal(fromFile.storage.readOnly, expected, word);
      const fromEnv = parseConfig("version: 0.1\nstorage:\n  inmemory:\n", {
        REGISTRY_STORAGE_DELETE_ENABLED: word,
      });
      assert.equal(fromEnv.storage.deleteEnabled, expected, `${word} (environment)`);
    }
    const error = configError(() =>
      parseConfig("version: 0.1\nstorage:\n  inmemory:\n  delete:\n    enabled: maybe\n", {}),
    );
    assert.match(error.message, /storage\.delete\.enabled: must be true or false, got "maybe"/);
  });

  it("warns about an unknown driver parameter, naming it and the known name it is close to", () => {
    const config = parseConfig(
      `version: 0.1
storage:
  filesystem:
    rootdirectory: /tmp/berth-unused
    rootdir: /tmp/elsewhere
    colour: blue
`,
      {},
    );
    const rootdir = config.warnings.find((w) => w.startsWith("storage.filesystem.rootdir:"));
    assert.ok(rootdir, config.warnings.join("\n"));
    assert.match(rootdir, /unknown parameter of the filesystem driver/);
    assert.match(rootdir, /did you mean rootdirectory\?/);
    const colour = config.warnings.find((w) => w.startsWith("storage.filesystem.colour:"));
    assert.ok(colour, config.warnings.join("\n"));
    assert.doesNotMatch(colour, /did you mean/);
    // Parameters the driver knows raise nothing.
    const clean = parseConfig(`version: 0.1\n${filesystem}`, {});
    assert.deepEqual(clean.warnings, []);
    // A parameter distribution documents and Berth does not implement is named as such.
    const threads = parseConfig(`version: 0.1\n${filesystem}    maxthreads: 100\n`, {});
    assert.match(threads.warnings.join("\n"), /storage\.filesystem\.maxthreads: not supported/);
  });

  it("refuses to start on a key that looks like a security section but is not one", () => {
    for (const [yaml, key] of [
      ["Auth:\n  htpasswd:\n    realm: r\n    path: /tmp/htpasswd\n", "Auth"],
      ["AUTH:\n  token:\n    realm: r\n", "AUTH"],
      ["authentication:\n  htpasswd:\n    path: /tmp/htpasswd\n", "authentication"],
      ["auths:\n  htpasswd:\n    path: /tmp/htpasswd\n", "auths"],
      ["http:\n  TLS:\n    certificate: /c.pem\n    key: /k.pem\n", "http.TLS"],
      ["http:\n  ssl:\n    certificate: /c.pem\n    key: /k.pem\n", "http.ssl"],
      ["http:\n  tls:\n    Certificate: /c.pem\n    Key: /k.pem\n", "http.tls.Certificate"],
      [
        "http:\n  tls:\n    certificate: /c.pem\n    key: /k.pem\n    ClientCAs: [/ca.pem]\n",
        "http.tls.ClientCAs",
      ],
    ] as const) {
      const error = configError(() => parseConfig(`version: 0.1\n${filesystem}${yaml}`, {}));
      assert.ok(
        error.problems.some((problem) => problem.key === key),
        `${key}: ${error.message}`,
      );
      assert.match(error.message, /security/);
    }
    // The exact `auth` key configures authentication; look-alikes inside it are refused too.
    const auth = parseConfig(
      `version: 0.1\n${filesystem}auth:\n  htpasswd:\n    realm: r\n    path: /tmp/x\n`,
      {},
    );
    assert.deepEqual(auth.auth?.htpasswd, { realm: "r", path: "/tmp/x" });
    for (const [yaml, key] of [
      ["auth:\n  Htpasswd:\n    realm: r\n    path: /tmp/x\n", "auth.Htpasswd"],
      [
        "auth:\n  htpasswd:\n    realm: r\n    path: /tmp/x\n  accessControls: {}\n",
        "auth.accessControls",
      ],
      [
        "auth:\n  token:\n    realm: https://a/t\n    service: s\n    issuer: i\n    jwks: /j\n    RootCertBundle: /b\n",
        "auth.token.RootCertBundle",
      ],
    ] as const) {
      const error = configError(() => parseConfig(`version: 0.1\n${filesystem}${yaml}`, {}));
      assert.ok(
        error.problems.some((problem) => problem.key === key),
        `${key}: ${error.message}`,
      );
    }
  });
});
