import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseChallenge, retryAfterMs } from "./upstream.js";

describe("upstream protocol details", () => {
  it("parses Docker Hub's bearer challenge and a Basic one", () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/alpine:pull",
        },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), {
      scheme: "basic",
      params: { realm: "Registry Realm" },
    });
    assert.equal(parseChallenge(null), undefined);
  });

  it("reads Retry-After as seconds or an HTTP date, with a default when absent or bad", () => {
    assert.equal(retryAfterMs("7"), 7000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:30 GMT", now), 30_000);
    assert.equal(retryAfterMs(null), 10_000);
    assert.equal(retryAfterMs("whenever"), 10_000);
  });
});
