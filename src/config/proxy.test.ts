import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertProblems, minimalConfig } from "../testing/config.js";
import { DEFAULT_PROXY_TTL_MS, parseConfig } from "./index.js";

describe("config proxy section", () => {
  it("is empty without a proxy section", () => {
    assert.deepEqual(parseConfig(minimalConfig, {}).proxy, { upstreams: [] });
  });

  it("reads distribution's remoteurl, username, password and ttl as one upstream for everything", () => {
    const config = parseConfig(
      `${minimalConfig}proxy:\n  remoteurl: https://registry-1.docker.io/\n  username: me\n  password: pw\n  ttl: 2h\n`,
      {},
    );
    assert.deepEqual(config.proxy.upstreams, [
      {
        prefix: "",
        remoteURL: "https://registry-1.docker.io",
        username: "me",
        password: "pw",
        ttlMs: 2 * 3600_000,
      },
    ]);
    assert.deepEqual(config.warnings, []);
  });

  it("takes REGISTRY_PROXY_REMOTEURL from the environment", () => {
    const config = parseConfig(minimalConfig, {
      REGISTRY_PROXY_REMOTEURL: "http://127.0.0.1:5001",
    });
    assert.equal(config.proxy.upstreams[0]!.remoteURL, "http://127.0.0.1:5001");
    assert.equal(config.proxy.upstreams[0]!.ttlMs, DEFAULT_PROXY_TTL_MS);
  });

  it("reads several upstreams, each with its prefix", () => {
    const config = parseConfig(
      `${minimalConfig}proxy:
  upstreams:
    - prefix: docker.io/
      remoteurl: https://registry-1.docker.io
      ttl: 10m
    - prefix: ghcr.io/
      remoteurl: https://ghcr.io
      username: u
      password: p
`,
      {},
    );
    assert.deepEqual(
      config.proxy.upstreams.map((upstream) => [
        upstream.prefix,
        upstream.remoteURL,
        upstream.ttlMs,
      ]),
      [
        ["docker.io/", "https://registry-1.docker.io", 600_000],
        ["ghcr.io/", "https://ghcr.io", DEFAULT_PROXY_TTL_MS],
      ],
    );
  });

  it("refuses bad values, naming the key and never echoing a credential", () => {
    assertProblems([
      ["proxy.remoteurl", "proxy:\n  remoteurl: ftp://example.com\n", /http or https/],
      ["proxy.remoteurl", "proxy:\n  remoteurl: not a url\n", /not a URL/],
      ["proxy.ttl", "proxy:\n  remoteurl: http://a\n  ttl: soon\n", /not a duration/],
      ["proxy", "proxy:\n  remoteurl: http://a\n  username: u\n", /go together/],
      [
        "proxy.upstreams",
        "proxy:\n  remoteurl: http://a\n  upstreams:\n    - {prefix: a/, remoteurl: http://b}\n",
        /not both/,
      ],
      [
        "proxy.upstreams[0].prefix",
        "proxy:\n  upstreams:\n    - {prefix: docker.io, remoteurl: http://b}\n",
        /ending with a slash/,
      ],
      [
        "proxy.upstreams[1].prefix",
        "proxy:\n  upstreams:\n    - {prefix: a/, remoteurl: http://b}\n    - {prefix: a/b/, remoteurl: http://c}\n",
        /overlaps "a\/"/,
      ],
    ]);
    const secret = "hunter2secret";
    assertProblems([
      ["proxy.remoteurl", `proxy:\n  remoteurl: https://me:${secret}@example.com\n`, /credentials/],
    ]);
    try {
      parseConfig(`${minimalConfig}proxy:\n  remoteurl: https://me:${secret}@example.com\n`, {});
    } catch (error) {
      assert.ok(!(error as Error).message.includes(secret));
    }
  });
});
