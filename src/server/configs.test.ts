// Real config files served (issue 11, "Configs"): distribution's documented example config
// (docs/configuration.md of distribution v2.8.2) and Debian's stock
// /etc/docker/registry/config.yml (package docker-registry 2.8.2), both kept verbatim in
// src/config/fixtures. Each starts a Berth with its paths moved to a temp dir and its port to 0,
// takes a pushed blob and serves it back, and names what Berth ignores. A read-only root served
// with maintenance.readonly.enabled is here too.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseDocument } from "yaml";
import { ConfigError, parseConfig, type BerthConfig } from "../config/index.js";
import { sha256 } from "../testing/images.js";
import { startRegistry, type RunningRegistry } from "./index.js";

const run = promisify(execFile);

/** The fixtures directory, from src/server or dist/src/server. */
async function fixture(name: string): Promise<string> {
  for (const up of ["../config/fixtures/", "../../../src/config/fixtures/"]) {
    try {
      return await readFile(fileURLToPath(new URL(up + name, import.meta.url)), "utf8");
    } catch {
      // Not in this layout: try the other.
    }
  }
  throw new Error(`fixture ${name} not found`);
}

/** `text` with each [path, value] set (undefined deletes), repeated keys kept as written. */
function rewrite(text: string, changes: [path: (string | number)[], value: unknown][]): string {
  const document = parseDocument(text, { uniqueKeys: false });
  for (const [path, value] of changes) {
    if (value === undefined) document.deleteIn(path);
    else document.setIn(path, value);
  }
  return document.toString();
}

async function withTempDir(fn: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "berth-configs-"));
  try {
    await fn(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Pushes a blob through `registry` and pulls it back. */
async function pushAndPull(registry: RunningRegistry): Promise<void> {
  const bytes = Buffer.from(`a blob served from a real config ${Math.random()}`);
  const digest = sha256(bytes);
  const started = await fetch(`${registry.url}/v2/configs/app/blobs/uploads/`, { method: "POST" });
  assert.equal(started.status, 202, await started.text());
  const location = new URL(started.headers.get("location")!, registry.url);
  location.searchParams.set("digest", digest);
  const finished = await fetch(location, { method: "PUT", body: bytes });
  assert.equal(finished.status, 201, await finished.text());
  const pulled = await fetch(`${registry.url}/v2/configs/app/blobs/${digest}`);
  assert.equal(pulled.status, 200);
  assert.deepEqual(Buffer.from(await pulled.arrayBuffer()), bytes);
}

/** The keys the warnings name (each warning starts with its key). */
function warnedKeys(config: BerthConfig): string[] {
  return config.warnings.map((warning) => warning.split(/[: ]/)[0]!);
}

describe("real config files", () => {
  it("distribution's documented example: repeated middleware.storage and every section named", async () => {
    const text = await fixture("distribution-example.yml");
    // As documented it names six storage drivers and three auth schemes, which distribution refuses
    // too; the repeated middleware.storage is not what stops it.
    const asDocumented = (() => {
      try {
        parseConfig(text, {});
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    assert.ok(asDocumented instanceof ConfigError, String(asDocumented));
    // Its proxy credentials are written `[username]`, a YAML list where a string belongs, and its
    // endpoint headers `<http.Header>`, a placeholder where a mapping belongs.
    assert.deepEqual(asDocumented.problems.map((problem) => problem.key).sort(), [
      "auth",
      "auth.silly",
      "notifications.endpoints[0].headers",
      "proxy.password",
      "proxy.username",
      "storage",
    ]);

    await withTempDir(async (directory) => {
      const served = rewrite(text, [
        ...["azure", "gcs", "s3", "swift", "oss", "inmemory"].map((driver): [string[], unknown] => [
          ["storage", driver],
          undefined,
        ]),
        [["storage", "filesystem", "rootdirectory"], join(directory, "registry")],
        [["auth"], undefined],
        // A pull-through cache of Docker Hub refuses the push this test makes.
        [["proxy"], undefined],
        [["http", "tls"], undefined],
        [["http", "host"], undefined],
        [["http", "addr"], "127.0.0.1:0"],
        [["http", "debug", "addr"], "127.0.0.1:0"],
        // `<http.Header>` stands for a mapping of header names to lists of values.
        [["notifications", "endpoints", 0, "headers"], { Authorization: ["Bearer t"] }],
        [["notifications", "endpoints", 0, "url"], "http://127.0.0.1:9/event"],
      ]);
      const config = parseConfig(served, {}, "distribution-example.yml");
      const keys = warnedKeys(config);
      for (const key of [
        "middleware.storage",
        "middleware",
        "reporting",
        "redis.pool",
        "compatibility",
        "validation",
        "loglevel",
        "log.hooks",
        "storage.filesystem.maxthreads",
        "http.secret",
        "http.http2",
      ]) {
        assert.ok(keys.includes(key), `no warning names ${key}:\n${config.warnings.join("\n")}`);
      }
      assert.match(
        config.warnings.find((w) => w.startsWith("middleware.storage"))!,
        /line \d+/,
      );
      assert.equal(config.http.prefix, "/my/nested/registry");
      assert.deepEqual(config.notifications, {
        includeReferences: true,
        endpoints: [
          {
            name: "alistener",
            url: "http://127.0.0.1:9/event",
            headers: { Authorization: ["Bearer t"] },
            timeoutMs: 1_000,
            threshold: 10,
            backoffMs: 1_000,
            ignoredMediaTypes: ["application/octet-stream", "application/octet-stream"],
            ignoredActions: ["pull"],
            disabled: false,
          },
        ],
        spoolDirectory: undefined,
      });
      const registry = await startRegistry({ config, logLevel: "silent" });
      try {
        assert.ok(registry.url.endsWith("/my/nested/registry"), registry.url);
        await pushAndPull(registry);
        // http.debug and health are served: metrics and the health status on the debug server.
        const metrics = await fetch(`${registry.debugUrl}/metrics`);
        assert.match(await metrics.text(), /registry_http_requests_total\{/);
        assert.equal((await fetch(`${registry.debugUrl}/debug/health`)).status, 200);
      } finally {
        await registry.close();
      }
    });
  });

  it("Debian's stock /etc/docker/registry/config.yml", async () => {
    const text = await fixture("debian-config.yml");
    await withTempDir(async (directory) => {
      const root = join(directory, "docker-registry");
      const moved = [
        [["storage", "filesystem", "rootdirectory"], root],
        [["http", "addr"], "127.0.0.1:0"],
      ] satisfies [string[], unknown][];
      // It asks for htpasswd authentication at a path that is a directory (as shipped): refused at
      // start, naming the key; with a file there it is served with Basic authentication.
      const asShipped = parseConfig(
        rewrite(text, [...moved, [["auth", "htpasswd", "path"], directory]]),
        {},
      );
      await assert.rejects(
        startRegistry({ config: asShipped, logLevel: "silent" }),
        (error) =>
          error instanceof ConfigError &&
          error.problems.some((p) => p.key === "auth.htpasswd.path"),
      );
      const htpasswd = join(directory, "htpasswd");
      const withAuth = parseConfig(
        rewrite(text, [...moved, [["auth", "htpasswd", "path"], htpasswd]]),
        {},
      );
      const protectedRegistry = await startRegistry({ config: withAuth, logLevel: "silent" });
      try {
        const anonymous = await fetch(`${protectedRegistry.url}/v2/`);
        assert.equal(anonymous.status, 401);
        assert.equal(anonymous.headers.get("www-authenticate"), 'Basic realm="basic-realm"');
        assert.match(await readFile(htpasswd, "utf8"), /^docker:\$2[ab]\$10\$/);
      } finally {
        await protectedRegistry.close();
      }
      const config = parseConfig(rewrite(text, [...moved, [["auth"], undefined]]), {});
      assert.deepEqual(warnedKeys(config), []);
      assert.equal(config.storage.deleteEnabled, true);
      assert.deepEqual(config.http.headers, { "X-Content-Type-Options": ["nosniff"] });
      const registry = await startRegistry({ config, logLevel: "silent" });
      try {
        await pushAndPull(registry);
        const response = await fetch(`${registry.url}/v2/`);
        assert.equal(response.headers.get("x-content-type-options"), "nosniff");
      } finally {
        await registry.close();
      }
    });
  });
});

/** Makes `target` a read-only view of `source`: a read-only bind mount as root, chmod otherwise. */
async function readOnlyView(source: string, target: string): Promise<() => Promise<void>> {
  await mkdir(target);
  if (process.getuid?.() !== 0) {
    await run("chmod", ["-R", "a-w", source]);
    await rm(target, { recursive: true });
    return async () => {
      await run("chmod", ["-R", "u+w", source]);
    };
  }
  await run("mount", ["--bind", source, target]);
  await run("mount", ["-o", "remount,bind,ro", target]);
  return async () => {
    await run("umount", [target]);
  };
}

describe("a read-only root", () => {
  it("is served with maintenance.readonly.enabled, and refused without it", async () => {
    await withTempDir(async (directory) => {
      const source = join(directory, "root");
      const bytes = Buffer.from("pushed before the root became read-only");
      const digest = sha256(bytes);
      const writable = await startRegistry({
        driver: "filesystem",
        parameters: { rootdirectory: source },
        logLevel: "silent",
      });
      try {
        const started = await fetch(`${writable.url}/v2/app/blobs/uploads/`, { method: "POST" });
        const location = new URL(started.headers.get("location")!, writable.url);
        location.searchParams.set("digest", digest);
        assert.equal((await fetch(location, { method: "PUT", body: bytes })).status, 201);
      } finally {
        await writable.close();
      }
      const view = join(directory, "view");
      const undo = await readOnlyView(source, view);
      const root = process.getuid?.() === 0 ? view : source;
      try {
        const yaml = (readonly: boolean) =>
          `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n` +
          `  maintenance:\n    readonly:\n      enabled: ${readonly}\nhttp:\n  addr: 127.0.0.1:0\n`;
        await assert.rejects(
          startRegistry({ config: parseConfig(yaml(false), {}), logLevel: "silent" }),
          /storage\.filesystem\.rootdirectory: .* is not writable/,
        );
        const registry = await startRegistry({
          config: parseConfig(yaml(true), {}),
          logLevel: "silent",
        });
        try {
          const pulled = await fetch(`${registry.url}/v2/app/blobs/${digest}`);
          assert.equal(pulled.status, 200);
          assert.deepEqual(Buffer.from(await pulled.arrayBuffer()), bytes);
          const push = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST" });
          assert.equal(push.status, 405);
        } finally {
          await registry.close();
        }
      } finally {
        await undo();
      }
    });
  });
});
