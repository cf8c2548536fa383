import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "./index.js";
import { assertProblems } from "../testing/config.js";

describe("config: auth", () => {
  it("reads distribution's auth.htpasswd unchanged", () => {
    const config = parseConfig(
      "version: 0.1\nstorage: inmemory\nauth:\n  htpasswd:\n    realm: basic-realm\n    path: /auth/htpasswd\n",
      {},
    );
    assert.deepEqual(config.auth?.htpasswd, { realm: "basic-realm", path: "/auth/htpasswd" });
    assert.equal(config.auth?.token, undefined);
    assert.deepEqual(config.auth?.throttle, { attempts: 10, windowMs: 60_000 });
    assert.deepEqual(config.warnings, []);
  });

  it("reads distribution's auth.token with every key, and environment overrides", () => {
    const yaml = [
      "version: 0.1",
      "storage: inmemory",
      "auth:",
      "  token:",
      "    realm: https://auth.example.com/token",
      "    service: registry.example.com",
      "    issuer: auth-issuer",
      "    rootcertbundle: /certs/bundle.pem",
      "    jwks: /certs/jwks.json",
      "    autoredirect: false",
      "    signingalgorithms: [ES256, RS256]",
      "",
    ].join("\n");
    const config = parseConfig(yaml, { REGISTRY_AUTH_TOKEN_ISSUER: "other-issuer" });
    const token = config.auth!.token!;
    assert.equal(token.realm, "https://auth.example.com/token");
    assert.equal(token.service, "registry.example.com");
    assert.equal(token.issuer, "other-issuer");
    assert.equal(token.rootCertBundle, "/certs/bundle.pem");
    assert.equal(token.jwks, "/certs/jwks.json");
    assert.deepEqual(token.signingAlgorithms, ["ES256", "RS256"]);
    assert.equal(token.autoRedirectPath, "/auth/token");
    assert.equal(token.issue, undefined);
  });

  it("reads the token service, access rules in zot's camelCase or lower case, and throttling", () => {
    const yaml = [
      "version: 0.1",
      "storage: inmemory",
      "auth:",
      "  token:",
      "    realm: https://registry.example.com/auth/token",
      "    service: registry.example.com",
      "    issuer: berth",
      "    issue:",
      "      users: /auth/htpasswd",
      "      key: /auth/signing.pem",
      "      expiration: 5m",
      "  accesscontrol:",
      "    groups:",
      "      devs: [alice]",
      "      ops: {users: [bob]}",
      "    repositories:",
      '      "team/**":',
      "        policies:",
      "          - users: [carol]",
      "            groups: [devs]",
      "            actions: [pull, push]",
      "        defaultPolicy: [pull]",
      "        anonymouspolicy: []",
      "    adminPolicy:",
      "      users: [root]",
      '      actions: ["*"]',
      "  throttle:",
      "    attempts: 5",
      "    window: 30s",
      "",
    ].join("\n");
    const auth = parseConfig(yaml, {}).auth!;
    assert.deepEqual(auth.token!.issue, {
      users: "/auth/htpasswd",
      key: "/auth/signing.pem",
      expirationMs: 300_000,
      refreshExpirationMs: 30 * 24 * 3_600_000,
    });
    assert.deepEqual(auth.accessControl, {
      groups: { devs: ["alice"], ops: ["bob"] },
      repositories: {
        "team/**": {
          policies: [{ users: ["carol"], groups: ["devs"], actions: ["pull", "push"] }],
          defaultPolicy: ["pull"],
          anonymousPolicy: [],
        },
      },
      adminPolicy: { users: ["root"], groups: [], actions: ["pull", "push", "delete"] },
    });
    assert.deepEqual(auth.throttle, { attempts: 5, windowMs: 30_000 });
  });

  it("names each bad auth key", () => {
    const htpasswd = "auth:\n  htpasswd:\n    realm: r\n    path: /p\n";
    assertProblems([
      ["auth", "auth:\n  accesscontrol: {}\n", /exactly one of htpasswd and token/],
      ["auth", `${htpasswd}  token:\n    realm: r\n`, /exactly one of htpasswd and token/],
      ["auth.htpasswd.path", "auth:\n  htpasswd:\n    realm: r\n", /is required/],
      ["auth.htpasswd.realm", "auth:\n  htpasswd:\n    path: /p\n", /is required/],
      ["auth.silly", `${htpasswd}  silly:\n    realm: r\n`, /not supported/],
      [
        "auth.token",
        "auth:\n  token:\n    realm: https://a/t\n    service: s\n    issuer: i\n",
        /rootcertbundle, jwks or issue/,
      ],
      [
        "auth.token.signingalgorithms",
        "auth:\n  token:\n    realm: https://a/t\n    service: s\n    issuer: i\n    jwks: /j\n    signingalgorithms: [none]\n",
        /"none" is not accepted/,
      ],
      [
        "auth.token.service",
        "auth:\n  token:\n    realm: https://a/t\n    issuer: i\n    jwks: /j\n",
        /is required/,
      ],
      [
        "auth.token.issue.key",
        "auth:\n  token:\n    realm: https://a/t\n    service: s\n    issuer: i\n    issue:\n      users: /u\n",
        /is required/,
      ],
      [
        "auth.accesscontrol.repositories.a/*.defaultpolicy",
        `${htpasswd}  accesscontrol:\n    repositories:\n      a/*:\n        defaultPolicy: [read]\n`,
        /unknown action "read"/,
      ],
      ["auth.throttle.attempts", `${htpasswd}  throttle:\n    attempts: -1\n`, /whole number/],
    ]);
  });
});
