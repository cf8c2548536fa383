import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { ConfigError } from "../config/index.js";
import {
  BackendError,
  InMemoryDriver,
  InvalidParameterError,
  registerDriver,
  type FileInfo,
} from "../driver/index.js";
import { captureLogger } from "../testing/logger.js";
import { eventually } from "../testing/eventually.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startRegistry } from "./index.js";

/** An inmemory driver whose backend is down: every stat fails, with an OS error naming a path. */
class FailingDriver extends InMemoryDriver {
  override async stat(path: string): Promise<FileInfo> {
    const cause = new Error("EACCES: permission denied, stat '/srv/secret-root/docker/registry'");
    throw new BackendError("failing", "stat", path, { cause });
  }
}
registerDriver("servertest-failing", () => new FailingDriver());
registerDriver("servertest-strict", (parameters) => {
  if (typeof parameters.bucket !== "string") {
    throw new InvalidParameterError("servertest-strict", "bucket", "is required");
  }
  return new InMemoryDriver();
});

describe("startRegistry", () => {
  it("serves the API on 127.0.0.1 and a free port from a driver name, and stops", async () => {
    const registry = await startRegistry({ driver: "inmemory" });
    assert.match(registry.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(registry.port, 0);
    const response = await fetch(`${registry.url}/v2/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("docker-distribution-api-version"), "registry/2.0");
    assert.deepEqual(await response.json(), {});
    await registry.close();
    await registry.close();
    await assert.rejects(fetch(`${registry.url}/v2/`));
  });

  it("starts from a config object in config.yml's shape, with prefix, host and headers", async () => {
    const registry = await startRegistry({
      config: {
        version: 0.1,
        storage: { inmemory: null },
        http: {
          addr: "127.0.0.1:0",
          prefix: "/registry/",
          host: "https://registry.example.com",
          headers: { "X-Content-Type-Options": ["nosniff"] },
        },
      },
      logLevel: "silent",
    });
    try {
      assert.match(registry.url, /^http:\/\/127\.0\.0\.1:\d+\/registry$/);
      const base = await fetch(`${registry.url}/v2/`);
      assert.equal(base.status, 200);
      assert.equal(base.headers.get("x-content-type-options"), "nosniff");

      const outside = await fetch(registry.url.replace("/registry", "/v2/"));
      assert.equal(outside.status, 404);
      assert.equal(outside.headers.get("x-content-type-options"), "nosniff");
      assert.equal(((await outside.json()) as { errors: unknown[] }).errors.length, 1);

      const started = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST" });
      assert.equal(started.status, 202);
      assert.match(
        started.headers.get("location")!,
        /^https:\/\/registry\.example\.com\/registry\/v2\/app\/blobs\/uploads\/[0-9a-f-]+$/,
      );
    } finally {
      await registry.close();
    }
  });

  it("answers /debug/health with 200 when the driver answers, 503 with a generic check name and no detail when not", async () => {
    const healthy = await startRegistry({ driver: "inmemory" });
    const { logger, lines } = captureLogger();
    const failing = await startRegistry({ driver: "servertest-failing", logger });
    try {
      const ok = await fetch(`${healthy.url}/debug/health`);
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), {});
      const down = await fetch(`${failing.url}/debug/health`);
      assert.equal(down.status, 503);
      const text = await down.text();
      // Failed before the fix: the body carried the error text with the absolute path.
      assert.deepEqual(JSON.parse(text), {
        "storagedriver_servertest-failing": "storage driver unavailable",
      });
      assert.doesNotMatch(text, /secret-root|EACCES|permission denied|\//);
      // The detail is in the log for the operator.
      assert.ok(lines.some((line) => JSON.stringify(line).includes("secret-root")));
      assert.equal((await fetch(`${healthy.url}/debug/health`, { method: "HEAD" })).status, 200);
      assert.equal((await fetch(`${healthy.url}/debug/health`, { method: "POST" })).status, 405);
    } finally {
      await Promise.all([healthy.close(), failing.close()]);
    }
  });

  it("writes one access line per request without the query or any credentials", async () => {
    const { logger, lines } = captureLogger();
    const registry = await startRegistry({ driver: "inmemory", logger });
    try {
      const response = await fetch(`${registry.url}/v2/_catalog?n=10&token=s3cr3t`, {
        headers: { authorization: "Bearer s3cr3t", "user-agent": "berth-test/1" },
      });
      await response.arrayBuffer();
      await eventually(() => lines.some((line) => line.msg === "request"));
      const line = lines.find((entry) => entry.msg === "request")!;
      assert.equal(line.level, 30);
      assert.equal(line.method, "GET");
      assert.equal(line.path, "/v2/_catalog");
      assert.equal(line.status, response.status);
      assert.equal(line.bytesOut, Number(response.headers.get("content-length")));
      assert.equal(line.bytesIn, 0);
      assert.equal(line.requestId, response.headers.get("x-request-id"));
      assert.equal(typeof line.durationMs, "number");
      assert.equal(line.remoteAddr, "127.0.0.1");
      assert.equal(line.userAgent, "berth-test/1");
      assert.doesNotMatch(JSON.stringify(lines), /s3cr3t/);
    } finally {
      await registry.close();
    }
  });

  it("gives every request an id, honouring X-Request-Id, in its access line and error lines", async () => {
    const { logger, lines } = captureLogger();
    const registry = await startRegistry({ driver: "inmemory", logger });
    try {
      const chosen = await fetch(`${registry.url}/v2/app/manifests/v1`, {
        headers: { "x-request-id": "trace-42" },
      });
      assert.equal(chosen.status, 404);
      assert.equal(chosen.headers.get("x-request-id"), "trace-42");
      const bad = await fetch(`${registry.url}/v2/`, { headers: { "x-request-id": "a b" } });
      const generated = bad.headers.get("x-request-id")!;
      assert.match(generated, /^[0-9a-f-]{36}$/);
      const pushed = await fetch(
        `${registry.url}/v2/app/blobs/uploads/?digest=sha256:${"0".repeat(64)}`,
        {
          method: "POST",
          body: "hello",
        },
      );
      assert.equal(pushed.status, 400);
      await eventually(() => lines.filter((line) => line.msg === "request").length === 3);
      const access = lines.filter((line) => line.msg === "request");
      assert.equal(access[0]!.requestId, "trace-42");
      assert.equal(access[0]!.repository, "app");
      assert.equal(access[1]!.requestId, generated);
      assert.equal(access[2]!.bytesIn, 5);
      assert.equal(access[2]!.requestId, pushed.headers.get("x-request-id"));
    } finally {
      await registry.close();
    }
  });

  it("lets a request in flight finish when closed, and refuses new connections", async () => {
    const registry = await startRegistry({ driver: "inmemory" });
    const started = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST" });
    const location = started.headers.get("location")!;
    const { port } = registry;
    const response = new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          method: "PATCH",
          path: location,
          headers: { "content-type": "application/octet-stream" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on("error", reject);
      req.write(Buffer.alloc(1024, 1));
      // The rest of the body arrives after the registry was told to stop.
      setTimeout(() => req.end(Buffer.alloc(1024, 2)), 200);
    });
    // Stop once the PATCH is in flight (a fixed wait lost the race on a loaded machine: the
    // connection was still in the listen backlog when the listener closed).
    await new Promise<void>((resolve) =>
      registry.server.on("request", (req: { method?: string }) => {
        if (req.method === "PATCH") resolve();
      }),
    );
    const closed = registry.close();
    await assert.rejects(fetch(`${registry.url}/v2/`));
    assert.equal(await response, 202);
    await closed;
  });

  it("cuts requests that outlast http.draintimeout", async () => {
    const registry = await startRegistry({
      config: {
        version: "0.1",
        storage: "inmemory",
        http: { addr: "127.0.0.1:0", draintimeout: "100ms" },
      },
      logLevel: "silent",
    });
    const started = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST" });
    const location = started.headers.get("location")!;
    const outcome = new Promise<string>((resolve) => {
      const req = httpRequest(
        { host: "127.0.0.1", port: registry.port, method: "PATCH", path: location },
        (res) => {
          resolve(`status ${res.statusCode}`);
        },
      );
      req.on("error", (error) => resolve(error.message));
      req.write(Buffer.alloc(1024));
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await registry.close();
    assert.match(await outcome, /socket hang up|ECONNRESET/);
  });

  it("purges abandoned uploads on the configured interval", async () => {
    const { logger, lines } = captureLogger();
    const registry = await startRegistry({
      config: {
        version: "0.1",
        storage: {
          inmemory: {},
          maintenance: {
            uploadpurging: { enabled: true, age: "1s", interval: "50ms", dryrun: false },
          },
        },
        http: { addr: "127.0.0.1:0" },
      },
      logger,
    });
    try {
      // An upload that stored bytes is the purger's to remove; one that stored nothing is
      // unknown once older than the purger's age (here at once).
      const started = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST" });
      const location = started.headers.get("location")!;
      const patched = await fetch(registry.url + location, { method: "PATCH", body: "abc" });
      assert.equal(patched.status, 202);
      await eventually(async () => (await fetch(registry.url + location)).status === 404);
      assert.ok(lines.some((line) => /^upload purge: removed \d+ upload/.test(String(line.msg))));
      const empty = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST" });
      const emptyLocation = empty.headers.get("location")!;
      await eventually(async () => (await fetch(registry.url + emptyLocation)).status === 404);
    } finally {
      await registry.close();
    }
  });

  it("refuses writes when read-only", async () => {
    const registry = await startRegistry({ driver: "inmemory", readOnly: true });
    try {
      assert.equal((await fetch(`${registry.url}/v2/`)).status, 200);
      const started = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST" });
      assert.ok(started.status >= 400, `POST gave ${started.status}`);
    } finally {
      await registry.close();
    }
  });

  it("names the config key of a bad driver parameter, a bad value or an address in use", async () => {
    await assert.rejects(startRegistry({ driver: "servertest-strict" }), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems[0]!.key, "storage.servertest-strict.bucket");
      assert.match(error.message, /storage\.servertest-strict\.bucket: is required/);
      return true;
    });
    await assert.rejects(
      startRegistry({ config: { version: "0.1", storage: "inmemory", http: { addr: "nope" } } }),
      /http\.addr: "nope" is not host:port/,
    );
    const first = await startRegistry({ driver: "inmemory" });
    try {
      await assert.rejects(
        startRegistry({ driver: "inmemory", port: first.port, logLevel: "silent" }),
        /http\.addr: cannot listen on 127\.0\.0\.1:\d+: the address is in use/,
      );
    } finally {
      await first.close();
    }
  });

  it(
    "serves HTTPS with http.tls",
    { skip: skipUnlessCommands(["openssl"], ["openssl"]) },
    async () => {
      const directory = await mkdtemp(join(tmpdir(), "berth-tls-"));
      try {
        const cert = join(directory, "cert.pem");
        const key = join(directory, "key.pem");
        await promisify(execFile)("openssl", [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=127.0.0.1",
          "-addext",
          "subjectAltName=IP:127.0.0.1",
          "-keyout",
          key,
          "-out",
          cert,
        ]);
        const registry = await startRegistry({
          config: {
            version: "0.1",
            storage: "inmemory",
            http: { addr: "127.0.0.1:0", tls: { certificate: cert, key } },
          },
          logLevel: "silent",
        });
        try {
          assert.match(registry.url, /^https:\/\/127\.0\.0\.1:\d+$/);
          const ca = await readFile(cert);
          const status = await new Promise<number>((resolve, reject) => {
            httpsRequest(`${registry.url}/v2/`, { ca }, (res) => {
              res.resume();
              resolve(res.statusCode!);
            })
              .on("error", reject)
              .end();
          });
          assert.equal(status, 200);
        } finally {
          await registry.close();
        }
        await assert.rejects(
          startRegistry({
            config: {
              version: "0.1",
              storage: "inmemory",
              http: { addr: "127.0.0.1:0", tls: { certificate: join(directory, "none.pem"), key } },
            },
            logLevel: "silent",
          }),
          /http\.tls\.certificate: cannot read .*none\.pem/,
        );
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  );
});
