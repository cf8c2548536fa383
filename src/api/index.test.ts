// HTTP tests of the API's edges: the version check, unknown routes, unsupported methods, names
// the spec does not allow, extra configured headers, and internal errors.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { RegistryStorage } from "../storage/index.js";
import {
  errorCode,
  pushImage,
  sha256,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";
import { createApiHandler } from "./index.js";

let registry: TestRegistry;

before(async () => {
  registry = await startTestRegistry({ headers: { "X-Content-Type-Options": ["nosniff"] } });
});
after(() => registry.close());

test("GET /v2/ answers 200 {} with the API version header", async () => {
  for (const path of ["/v2/", "/v2"]) {
    const response = await registry.fetch(path);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("docker-distribution-api-version"), "registry/2.0");
    assert.match(response.headers.get("content-type")!, /^application\/json/);
    assert.deepEqual(await response.json(), {});
  }
  const head = await registry.fetch("/v2/", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

test("configured headers are sent on every response", async () => {
  for (const path of ["/v2/", "/v2/nothing/here/at/all", "/v2/none/tags/list"]) {
    const response = await registry.fetch(path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(response.headers.get("docker-distribution-api-version"), "registry/2.0", path);
    await response.arrayBuffer();
  }
});

test("an unknown route is 404 with the error envelope", async () => {
  for (const path of ["/v2/a", "/v2/a/unknown/x", "/v2/a/manifests/", "/v3/"]) {
    const response = await registry.fetch(path);
    assert.equal(response.status, 404, path);
    assert.equal(await errorCode(response), "UNSUPPORTED");
  }
});

test("a method an endpoint does not support is 405 UNSUPPORTED with Allow", async () => {
  const cases: [string, string][] = [
    ["/v2/", "POST"],
    ["/v2/a/tags/list", "DELETE"],
    ["/v2/a/blobs/uploads/", "GET"],
    [`/v2/a/blobs/sha256:${"0".repeat(64)}`, "PUT"],
    ["/v2/a/manifests/latest", "POST"],
    ["/v2/_catalog", "PUT"],
  ];
  for (const [path, method] of cases) {
    const response = await registry.fetch(path, { method });
    assert.equal(response.status, 405, `${method} ${path}`);
    assert.ok(response.headers.get("allow"), `${method} ${path}`);
    assert.equal(await errorCode(response), "UNSUPPORTED");
  }
});

test("a repository name the spec does not allow is 400 NAME_INVALID", async () => {
  for (const path of [
    "/v2/UPPER/tags/list",
    "/v2/a..b/manifests/latest",
    `/v2/-a/blobs/sha256:${"0".repeat(64)}`,
    "/v2/a_-b/blobs/uploads/",
  ]) {
    const response = await registry.fetch(path, {
      method: path.endsWith("uploads/") ? "POST" : "GET",
    });
    assert.equal(response.status, 400, path);
    assert.equal(await errorCode(response), "NAME_INVALID", path);
  }
});

test("a storage failure is a 500 with a generic message, the detail going to the log", async () => {
  const logged: unknown[] = [];
  const failing = {
    repository() {
      throw new Error("backend exploded at s3://bucket?secret=hunter2");
    },
  } as unknown as RegistryStorage;
  const server = createServer(
    createApiHandler({
      storage: failing,
      logger: { error: (object) => logged.push(object), warn: () => undefined },
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const response = await fetch(`http://127.0.0.1:${port}/v2/a/tags/list`);
    assert.equal(response.status, 500);
    const text = await response.text();
    assert.doesNotMatch(text, /hunter2|s3:/);
    assert.equal((JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code, "UNKNOWN");
    assert.equal(logged.length, 1);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a failed request whose socket Node has let go of is dropped, not a crash (issue 11 defect 1: TypeError reading req.socket.destroyed took the process down)", async () => {
  const failing = {
    repository() {
      throw new Error("storage failed while the body was read");
    },
  } as unknown as RegistryStorage;
  const handler = createApiHandler({
    storage: failing,
    logger: { error: () => undefined, warn: () => undefined },
  });
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): number => rejections.push(reason);
  process.on("unhandledRejection", onRejection);
  // As Node does when it destroys a request inside a handler's read of its body.
  const server = createServer((req, res) => {
    if (req.url?.includes("gone")) Object.defineProperty(req, "socket", { value: null });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2`;
    await assert.rejects(fetch(`${url}/gone/tags/list`));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(rejections, []);
    // The server answers the next request as usual.
    assert.equal((await fetch(`${url}/still/tags/list`)).status, 500);
  } finally {
    process.off("unhandledRejection", onRejection);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("activity counts the requests received and the handlers running (the idle collector's view)", async () => {
  const failing = {
    repository() {
      throw new Error("no storage here");
    },
  } as unknown as RegistryStorage;
  const handler = createApiHandler({
    storage: failing,
    logger: { error: () => undefined, warn: () => undefined },
  });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    assert.deepEqual(handler.activity(), { started: 0, running: 0 });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2`;
    assert.equal((await fetch(`${url}/a/tags/list`)).status, 500);
    assert.equal((await fetch(`${url}/b/tags/list`)).status, 500);
    await handler.drain();
    assert.deepEqual(handler.activity(), { started: 2, running: 0 });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("in read-only mode reads work and every write is 405 UNSUPPORTED", async () => {
  // Push into a filesystem root, then serve the same root read-only.
  const root = await mkdtemp(join(tmpdir(), "berth-api-readonly-"));
  const parameters = { rootdirectory: root };
  try {
    const writable = await startTestRegistry({ driver: "filesystem", parameters });
    const image = await pushImage(writable, "readonly/app", "latest");
    await writable.close();

    const readOnly = await startTestRegistry({ driver: "filesystem", parameters, readOnly: true });
    try {
      const manifest = await readOnly.fetch("/v2/readonly/app/manifests/latest");
      assert.equal(manifest.status, 200);
      assert.equal(await manifest.text(), image.content);
      const writes: [string, string, string | undefined][] = [
        ["POST", "/v2/readonly/app/blobs/uploads/", undefined],
        ["POST", `/v2/readonly/app/blobs/uploads/?digest=${sha256("x")}`, "x"],
        ["PUT", "/v2/readonly/app/manifests/other", image.content],
        ["DELETE", "/v2/readonly/app/manifests/latest", undefined],
        ["DELETE", `/v2/readonly/app/manifests/${image.digest}`, undefined],
      ];
      for (const [method, path, body] of writes) {
        const response = await readOnly.fetch(path, { method, body });
        assert.equal(response.status, 405, `${method} ${path}`);
        assert.equal(await errorCode(response), "UNSUPPORTED", `${method} ${path}`);
      }
      assert.equal(
        (await readOnly.fetch("/v2/readonly/app/manifests/latest", { method: "HEAD" })).status,
        200,
      );
    } finally {
      await readOnly.close();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
