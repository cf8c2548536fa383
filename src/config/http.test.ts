import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertProblems, minimalConfig } from "../testing/config.js";
import { parseAddress, parseConfig } from "./index.js";

describe("config http section", () => {
  it("fills in distribution's defaults", () => {
    const { http } = parseConfig(minimalConfig, {});
    assert.deepEqual(
      { addr: http.addr, hostname: http.hostname, port: http.port },
      { addr: "127.0.0.1:5000", hostname: "127.0.0.1", port: 5000 },
    );
    assert.equal(http.prefix, "");
    assert.equal(http.host, undefined);
    assert.equal(http.tls, undefined);
    assert.deepEqual(http.headers, {});
    assert.equal(http.drainTimeoutMs, 10_000);
  });

  it("reads addr, host, prefix, draintimeout, tls and headers", () => {
    const config = parseConfig(
      `${minimalConfig}http:
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

  it("names the offending key of an invalid value", () => {
    assertProblems([
      ["http.addr", "http:\n  addr: nope\n", /^http\.addr: "nope" is not host:port$/],
      ["http.addr", "http:\n  addr: 127.0.0.1:99999\n", /not host:port/],
      ["http.prefix", "http:\n  prefix: registry\n", /must be a path starting with "\/"/],
      ["http.host", "http:\n  host: registry.example.com\n", /is not an http\(s\) URL/],
      [
        "http.tls.key",
        "http:\n  tls:\n    certificate: /c.pem\n",
        /is required with http.tls.certificate/,
      ],
      [
        "http.tls.minimumtls",
        "http:\n  tls:\n    minimumtls: ssl3\n    certificate: /c\n    key: /k\n",
        /must be one of tls1.0/,
      ],
      ["http.headers.X-Bad", "http:\n  headers:\n    X-Bad: {a: b}\n", /must be a list of strings/],
      ["http.net", "http:\n  net: unix\n", /must be one of tcp/],
      ["http.debug.addr", "http:\n  debug:\n    addr: nowhere\n", /is not host:port/],
      [
        "http.debug.prometheus.enabled",
        "http:\n  debug:\n    addr: :5001\n    prometheus:\n      enabled: sometimes\n",
        /must be true or false/,
      ],
    ]);
  });

  it("reads http.debug with its Prometheus path, /metrics by default", () => {
    assert.equal(parseConfig(minimalConfig, {}).http.debug, undefined);
    const on = parseConfig(
      `${minimalConfig}http:\n  debug:\n    addr: 127.0.0.1:5001\n    prometheus:\n      enabled: true\n`,
      {},
    );
    assert.deepEqual(on.http.debug, {
      addr: "127.0.0.1:5001",
      hostname: "127.0.0.1",
      port: 5001,
      prometheus: { enabled: true, path: "/metrics" },
    });
    const custom = parseConfig(
      `${minimalConfig}http:\n  debug:\n    addr: :5001\n    prometheus: {enabled: true, path: /prom}\n`,
      {},
    );
    assert.equal(custom.http.debug?.prometheus.path, "/prom");
    const nowhere = parseConfig(
      `${minimalConfig}http:\n  debug:\n    prometheus:\n      enabled: true\n`,
      {},
    );
    assert.equal(nowhere.http.debug, undefined);
    assert.match(nowhere.warnings.join("\n"), /http.debug.prometheus: .*set http.debug.addr/);
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
