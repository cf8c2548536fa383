// HTTP tests of blob GET/HEAD (whole, ranges, 416, ETag, redirects) and DELETE.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readlink, mkdtemp, rm } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InMemoryDriver, registerDriver } from "../driver/index.js";
import type { RedirectOptions, StoragePath } from "../driver/index.js";
import {
  errorCode,
  pushBlob,
  sha256,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";

let registry: TestRegistry;
const content = randomBytes(100_000);
let digest: string;

before(async () => {
  registry = await startTestRegistry();
  digest = await pushBlob(registry, "blobs/repo", content);
});
after(() => registry.close());

test("GET of a blob streams it with its headers", async () => {
  const response = await registry.fetch(`/v2/blobs/repo/blobs/${digest}`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-length"), String(content.length));
  assert.equal(response.headers.get("content-type"), "application/octet-stream");
  assert.equal(response.headers.get("docker-content-digest"), digest);
  assert.equal(response.headers.get("accept-ranges"), "bytes");
  assert.equal(response.headers.get("etag"), `"${digest}"`);
  assert.deepEqual(Buffer.from(await response.arrayBuffer()), content);
});

test("HEAD of a blob has the headers and no body", async () => {
  const response = await registry.fetch(`/v2/blobs/repo/blobs/${digest}`, { method: "HEAD" });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-length"), String(content.length));
  assert.equal(response.headers.get("docker-content-digest"), digest);
  assert.equal((await response.arrayBuffer()).byteLength, 0);
});

test("If-None-Match with the blob's ETag is 304", async () => {
  const response = await registry.fetch(`/v2/blobs/repo/blobs/${digest}`, {
    headers: { "If-None-Match": `"${digest}"` },
  });
  assert.equal(response.status, 304);
});

test("Range requests get 206 with Content-Range, unsatisfiable ones 416", async () => {
  const cases: [string, number, number][] = [
    ["bytes=0-9", 0, 9],
    ["bytes=99990-", 99_990, 99_999],
    ["bytes=-5", 99_995, 99_999],
    ["bytes=1000-70000", 1000, 70_000],
  ];
  for (const [range, start, end] of cases) {
    const response = await registry.fetch(`/v2/blobs/repo/blobs/${digest}`, {
      headers: { Range: range },
    });
    assert.equal(response.status, 206, range);
    assert.equal(response.headers.get("content-range"), `bytes ${start}-${end}/${content.length}`);
    assert.equal(response.headers.get("content-length"), String(end - start + 1));
    assert.deepEqual(
      Buffer.from(await response.arrayBuffer()),
      content.subarray(start, end + 1),
      range,
    );
  }
  const unsatisfiable = await registry.fetch(`/v2/blobs/repo/blobs/${digest}`, {
    headers: { Range: "bytes=100000-" },
  });
  assert.equal(unsatisfiable.status, 416);
  assert.equal(unsatisfiable.headers.get("content-range"), `bytes */${content.length}`);
  assert.equal(await errorCode(unsatisfiable), "RANGE_INVALID");
});

test("a Range that ends before it starts is 416, not the whole blob", async () => {
  // The conformance suite's newer runner sends `bytes=500-0` and counts a 200 as no range support.
  const reversed = await registry.fetch(`/v2/blobs/repo/blobs/${digest}`, {
    headers: { Range: "bytes=500-0" },
  });
  assert.equal(reversed.status, 416);
  assert.equal(reversed.headers.get("content-range"), `bytes */${content.length}`);
  assert.equal(await errorCode(reversed), "RANGE_INVALID");
});

test("an unknown blob is 404 BLOB_UNKNOWN (HEAD without body); a malformed digest 400", async () => {
  const unknown = sha256("hello world");
  const get = await registry.fetch(`/v2/blobs/repo/blobs/${unknown}`);
  assert.equal(get.status, 404);
  assert.equal(await errorCode(get), "BLOB_UNKNOWN");
  const head = await registry.fetch(`/v2/blobs/repo/blobs/${unknown}`, { method: "HEAD" });
  assert.equal(head.status, 404);
  assert.equal((await head.arrayBuffer()).byteLength, 0);
  // Linked in another repository only: unknown here.
  const elsewhere = await registry.fetch(`/v2/blobs/other/blobs/${digest}`, { method: "HEAD" });
  assert.equal(elsewhere.status, 404);
  const malformed = await registry.fetch("/v2/blobs/repo/blobs/sha256:1234");
  assert.equal(malformed.status, 400);
  assert.equal(await errorCode(malformed), "DIGEST_INVALID");
});

test("a client that aborts a download does not disturb the registry", async () => {
  const big = randomBytes(4 * 1024 * 1024);
  const bigDigest = await pushBlob(registry, "blobs/abort", big);
  await new Promise<void>((resolve, reject) => {
    const request = httpGet(`${registry.url}/v2/blobs/abort/blobs/${bigDigest}`, (response) => {
      response.once("data", () => {
        request.destroy();
        resolve();
      });
    });
    request.on("error", (error) => (request.destroyed ? resolve() : reject(error)));
  });
  const again = await registry.fetch(`/v2/blobs/abort/blobs/${bigDigest}`);
  assert.equal(again.status, 200);
  assert.equal((await again.arrayBuffer()).byteLength, big.length);
});

/** This process's open files below `dir` (Linux; elsewhere none are seen). */
async function openFilesBelow(dir: string): Promise<string[]> {
  const fds = await readdir("/proc/self/fd").catch(() => [] as string[]);
  const targets = await Promise.all(
    fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")),
  );
  return targets.filter((target) => target.startsWith(dir));
}

test("on the filesystem driver, GET and Range copy the bytes; an abort leaves no file open", async () => {
  const root = await mkdtemp(join(tmpdir(), "berth-api-blobs-"));
  const filesystem = await startTestRegistry({
    driver: "filesystem",
    parameters: { rootdirectory: root },
  });
  try {
    // Larger than the driver's copy buffers, so a GET takes several of them.
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const bigDigest = await pushBlob(filesystem, "blobs/fs", big);
    const whole = await filesystem.fetch(`/v2/blobs/fs/blobs/${bigDigest}`);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(big), "whole blob");
    const ranged = await filesystem.fetch(`/v2/blobs/fs/blobs/${bigDigest}`, {
      headers: { Range: "bytes=1000-2100000" },
    });
    assert.equal(ranged.status, 206);
    assert.ok(
      Buffer.from(await ranged.arrayBuffer()).equals(big.subarray(1000, 2_100_001)),
      "range across buffers",
    );
    await new Promise<void>((resolve, reject) => {
      const request = httpGet(`${filesystem.url}/v2/blobs/fs/blobs/${bigDigest}`, (response) => {
        response.once("data", () => {
          request.destroy();
          resolve();
        });
      });
      request.on("error", (error) => (request.destroyed ? resolve() : reject(error)));
    });
    // The server notices the abort on its next write; give it a moment, then no file is open.
    let open = await openFilesBelow(root);
    for (let attempt = 0; open.length > 0 && attempt < 50; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      open = await openFilesBelow(root);
    }
    assert.deepEqual(open, [], "files left open after the abort");
  } finally {
    await filesystem.close();
    await rm(root, { recursive: true, force: true });
  }
});

test("DELETE of a blob is 202, then it is unknown; an unknown blob is 404", async () => {
  const victim = await pushBlob(registry, "blobs/delete", "delete me");
  const deleted = await registry.fetch(`/v2/blobs/delete/blobs/${victim}`, { method: "DELETE" });
  assert.equal(deleted.status, 202);
  assert.equal(
    (await registry.fetch(`/v2/blobs/delete/blobs/${victim}`, { method: "HEAD" })).status,
    404,
  );
  const again = await registry.fetch(`/v2/blobs/delete/blobs/${victim}`, { method: "DELETE" });
  assert.equal(again.status, 404);
  assert.equal(await errorCode(again), "BLOB_UNKNOWN");
  const malformed = await registry.fetch("/v2/blobs/delete/blobs/sha256:1", { method: "DELETE" });
  assert.equal(malformed.status, 400);
  assert.equal(await errorCode(malformed), "DIGEST_INVALID");
});

test("DELETE of a blob is 405 UNSUPPORTED when deleting is disabled", async () => {
  const readOnly = await startTestRegistry({ deleteEnabled: false });
  try {
    const kept = await pushBlob(readOnly, "blobs/keep", "keep me");
    const response = await readOnly.fetch(`/v2/blobs/keep/blobs/${kept}`, { method: "DELETE" });
    assert.equal(response.status, 405);
    assert.equal(await errorCode(response), "UNSUPPORTED");
    assert.equal(
      (await readOnly.fetch(`/v2/blobs/keep/blobs/${kept}`, { method: "HEAD" })).status,
      200,
    );
  } finally {
    await readOnly.close();
  }
});

/** The inmemory driver, pretending to be an object store that hands out presigned URLs. */
class RedirectingDriver extends InMemoryDriver {
  override async redirectURL(
    path?: StoragePath,
    options?: RedirectOptions,
  ): Promise<string | null> {
    return `https://objects.example/${options?.method ?? "GET"}${path ?? ""}`;
  }
}
registerDriver("redirecting-inmemory", () => new RedirectingDriver());

test("blob GET and HEAD redirect (307) to the driver's URL unless redirects are disabled", async () => {
  const redirecting = await startTestRegistry({ driver: "redirecting-inmemory" });
  const direct = await startTestRegistry({ driver: "redirecting-inmemory", redirect: false });
  try {
    const pushed = await pushBlob(redirecting, "blobs/redirect", "far away");
    for (const method of ["GET", "HEAD"]) {
      const response = await redirecting.fetch(`/v2/blobs/redirect/blobs/${pushed}`, { method });
      assert.equal(response.status, 307, method);
      assert.match(
        response.headers.get("location")!,
        new RegExp(`^https://objects\\.example/${method}/`),
      );
    }
    const unknown = await redirecting.fetch(`/v2/blobs/redirect/blobs/${sha256("x")}`);
    assert.equal(unknown.status, 404);

    await pushBlob(direct, "blobs/redirect", "far away");
    const served = await direct.fetch(`/v2/blobs/redirect/blobs/${pushed}`);
    assert.equal(served.status, 200);
    assert.equal(await served.text(), "far away");
  } finally {
    await redirecting.close();
    await direct.close();
  }
});

test("concurrent DELETEs of one blob: 202 or 404 BLOB_UNKNOWN, never a 500", async () => {
  const root = await mkdtemp(join(tmpdir(), "berth-delete-race-"));
  const local = await startTestRegistry({
    driver: "filesystem",
    parameters: { rootdirectory: root },
  });
  try {
    for (let round = 0; round < 10; round++) {
      const blob = await pushBlob(local, "race/repo", randomBytes(1000));
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          local.fetch(`/v2/race/repo/blobs/${blob}`, { method: "DELETE" }),
        ),
      );
      const statuses = responses.map((response) => response.status).sort();
      assert.ok(statuses.includes(202), String(statuses));
      for (const response of responses) {
        if (response.status === 202) continue;
        assert.equal(response.status, 404);
        assert.equal(await errorCode(response), "BLOB_UNKNOWN");
      }
    }
  } finally {
    await local.close();
    await rm(root, { recursive: true, force: true });
  }
});
