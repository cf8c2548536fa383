import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertProblems, configError } from "../testing/config.js";
import { parseConfig } from "./index.js";

describe("config redis section and storage.cache.blobdescriptor", () => {
  it("reads distribution 2.8's redis section, with blobdescriptor: redis", () => {
    const config = parseConfig(
      `version: 0.1
storage:
  inmemory:
  cache:
    blobdescriptor: redis
redis:
  addr: localhost:6379
  password: asecret
  db: 2
  dialtimeout: 10ms
  readtimeout: 20ms
  writetimeout: 30ms
  pool:
    maxidle: 16
    maxactive: 64
    idletimeout: 300s
`,
      {},
    );
    assert.equal(config.storage.blobDescriptorCache, "redis");
    assert.deepEqual(config.redis, {
      addr: "localhost:6379",
      password: "asecret",
      db: 2,
      dialTimeoutMs: 10,
      commandTimeoutMs: 30,
    });
    // One pipelined connection: the pool's keys are read, checked and reported as unused.
    assert.deepEqual(
      config.warnings.map((warning) => warning.split(":")[0]),
      ["redis.pool"],
    );
    assert.ok(!config.warnings.join("\n").includes("asecret"));
  });

  it("defaults to the in-process cache; layerinfo is blobdescriptor's old name", () => {
    assert.equal(
      parseConfig("version: 0.1\nstorage: inmemory\n", {}).storage.blobDescriptorCache,
      "inmemory",
    );
    const old = parseConfig(
      "version: 0.1\nstorage:\n  inmemory:\n  cache:\n    layerinfo: redis\nredis:\n  addr: r:6379\n",
      {},
    );
    assert.equal(old.storage.blobDescriptorCache, "redis");
    assert.deepEqual(old.warnings, []);
  });

  it("takes distribution 3's addrs (one address), username and tls", () => {
    const config = parseConfig(
      `version: 0.1
storage: inmemory
redis:
  addrs: ["[::1]:6380"]
  username: berth
  tls:
    certificate: /etc/berth/redis.crt
    key: /etc/berth/redis.key
    rootcas: [/etc/berth/ca.pem]
`,
      {},
    );
    assert.deepEqual(config.redis, {
      addr: "[::1]:6380",
      username: "berth",
      db: 0,
      dialTimeoutMs: 0,
      commandTimeoutMs: 0,
      tls: {
        certificate: "/etc/berth/redis.crt",
        key: "/etc/berth/redis.key",
        rootCas: ["/etc/berth/ca.pem"],
      },
    });
  });

  it("names each bad value, and never prints the password", () => {
    assertProblems([
      [
        "storage.cache.blobdescriptor",
        "storage:\n  inmemory:\n  cache:\n    blobdescriptor: redis\n",
        /no redis section/,
      ],
      [
        "storage.cache.blobdescriptor",
        "storage:\n  inmemory:\n  cache:\n    blobdescriptor: memcached\n",
        /one of inmemory, redis/,
      ],
      ["redis.addr", "redis:\n  password: x\n", /is required/],
      ["redis.addr", "redis:\n  addr: localhost\n", /not host:port/],
      ["redis.addrs", "redis:\n  addrs: [a:1, b:2]\n", /one Redis server/],
      ["redis.db", "redis:\n  addr: a:1\n  db: -1\n", /whole number/],
      ["redis.readtimeout", "redis:\n  addr: a:1\n  readtimeout: soon\n", /not a duration/],
      ["redis.tls", "redis:\n  addr: a:1\n  tls:\n    certificate: /c.pem\n", /go together/],
    ]);
    const error = configError(() =>
      parseConfig(
        "version: 0.1\nstorage: inmemory\nredis:\n  addr: nowhere\n  password: hunter2\n",
        {},
      ),
    );
    assert.ok(!error.message.includes("hunter2"), error.message);
  });
});
