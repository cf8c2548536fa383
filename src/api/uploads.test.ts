// HTTP tests of blob uploads: monolithic POST, POST+PUT, streamed PATCH, Content-Range chunks
// (including the conformance suite's out-of-order and retried chunks), status, cancel,
// cross-repository mounts, and a client that disconnects mid-upload.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import {
  errorCode,
  pushBlob,
  sha256,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";

let registry: TestRegistry;

before(async () => {
  registry = await startTestRegistry();
});
after(() => registry.close());

async function startUpload(name: string): Promise<Response> {
  const response = await registry.fetch(`/v2/${name}/blobs/uploads/`, {
    method: "POST",
    headers: { "Content-Length": "0" },
  });
  assert.equal(response.status, 202);
  return response;
}

async function blobStatus(name: string, digest: string): Promise<number> {
  const response = await registry.fetch(`/v2/${name}/blobs/${digest}`, { method: "HEAD" });
  return response.status;
}

test("POST starts a session: 202, Location, Docker-Upload-UUID, Range 0-0", async () => {
  const response = await startUpload("uploads/start");
  const id = response.headers.get("docker-upload-uuid");
  assert.ok(id);
  assert.equal(response.headers.get("location"), `/v2/uploads/start/blobs/uploads/${id}`);
  assert.equal(response.headers.get("range"), "0-0");
  assert.equal(response.headers.get("content-length"), "0");
  // Without the trailing slash too.
  const bare = await registry.fetch("/v2/uploads/start/blobs/uploads", { method: "POST" });
  assert.equal(bare.status, 202);
});

test("POST with digest and body is a monolithic upload: 201 with the blob's Location", async () => {
  const content = randomBytes(1000);
  const digest = sha256(content);
  const response = await registry.fetch(`/v2/uploads/mono/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: content,
  });
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("location"), `/v2/uploads/mono/blobs/${digest}`);
  assert.equal(response.headers.get("docker-content-digest"), digest);
  const blob = await registry.fetch(`/v2/uploads/mono/blobs/${digest}`);
  assert.equal(blob.status, 200);
  assert.deepEqual(Buffer.from(await blob.arrayBuffer()), content);
});

test("a monolithic POST whose body does not match the digest is DIGEST_INVALID and stores nothing", async () => {
  const digest = sha256("something else");
  const response = await registry.fetch(`/v2/uploads/mono-bad/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: "the real content",
  });
  assert.equal(response.status, 400);
  assert.equal(await errorCode(response), "DIGEST_INVALID");
  assert.equal(await blobStatus("uploads/mono-bad", digest), 404);
  assert.equal(await blobStatus("uploads/mono-bad", sha256("the real content")), 404);

  const malformed = await registry.fetch(
    "/v2/uploads/mono-bad/blobs/uploads/?digest=sha256:nothex",
    {
      method: "POST",
      body: "x",
    },
  );
  assert.equal(malformed.status, 400);
  assert.equal(await errorCode(malformed), "DIGEST_INVALID");
});

test("POST then PUT with the whole body: 201 with Location and Docker-Content-Digest", async () => {
  const content = randomBytes(5000);
  const digest = sha256(content);
  const started = await startUpload("uploads/put");
  const response = await registry.fetch(`${started.headers.get("location")}?digest=${digest}`, {
    method: "PUT",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(content.length),
    },
    body: content,
  });
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("location"), `/v2/uploads/put/blobs/${digest}`);
  assert.equal(response.headers.get("docker-content-digest"), digest);
  assert.equal(await blobStatus("uploads/put", digest), 200);
});

test("a streamed PATCH (no Content-Range) then a PUT without body completes the blob", async () => {
  const content = randomBytes(300_000);
  const digest = sha256(content);
  const started = await startUpload("uploads/streamed");
  const patched = await registry.fetch(started.headers.get("location")!, {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream" },
    body: content,
  });
  assert.equal(patched.status, 202);
  assert.equal(patched.headers.get("range"), `0-${content.length - 1}`);
  assert.equal(
    patched.headers.get("docker-upload-uuid"),
    started.headers.get("docker-upload-uuid"),
  );
  const location = patched.headers.get("location")!;
  assert.match(location, /^\/v2\/uploads\/streamed\/blobs\/uploads\//);
  const finished = await registry.fetch(`${location}?digest=${digest}`, { method: "PUT" });
  assert.equal(finished.status, 201);
  const blob = await registry.fetch(`/v2/uploads/streamed/blobs/${digest}`);
  assert.deepEqual(Buffer.from(await blob.arrayBuffer()), content);
});

test("Content-Range chunks: in order 202, out of order or retried 416 with the current Range", async () => {
  const content = randomBytes(42);
  const digest = sha256(content);
  const first = content.subarray(0, 22);
  const second = content.subarray(22);
  const started = await startUpload("uploads/chunked");
  const location = started.headers.get("location")!;

  const outOfOrder = await registry.fetch(location, {
    method: "PATCH",
    headers: {
      "Content-Range": "22-41",
      "Content-Length": "20",
      "Content-Type": "application/octet-stream",
    },
    body: second,
  });
  assert.equal(outOfOrder.status, 416);
  assert.equal(outOfOrder.headers.get("range"), "0-0");
  assert.equal(await errorCode(outOfOrder), "RANGE_INVALID");

  const chunk1 = await registry.fetch(location, {
    method: "PATCH",
    headers: { "Content-Range": "0-21", "Content-Length": "22" },
    body: first,
  });
  assert.equal(chunk1.status, 202);
  assert.equal(chunk1.headers.get("range"), "0-21");

  const retried = await registry.fetch(location, {
    method: "PATCH",
    headers: { "Content-Range": "0-21", "Content-Length": "22" },
    body: first,
  });
  assert.equal(retried.status, 416);
  assert.equal(retried.headers.get("range"), "0-21");
  await retried.arrayBuffer();

  const status = await registry.fetch(location);
  assert.equal(status.status, 204);
  assert.equal(status.headers.get("range"), "0-21");
  assert.ok(status.headers.get("location"));
  assert.equal(status.headers.get("docker-upload-uuid"), started.headers.get("docker-upload-uuid"));

  const chunk2 = await registry.fetch(status.headers.get("location")!, {
    method: "PATCH",
    headers: { "Content-Range": "22-41", "Content-Length": "20" },
    body: second,
  });
  assert.equal(chunk2.status, 202);
  assert.equal(chunk2.headers.get("range"), "0-41");

  const finished = await registry.fetch(`${chunk2.headers.get("location")}?digest=${digest}`, {
    method: "PUT",
    headers: { "Content-Length": "0" },
  });
  assert.equal(finished.status, 201);
  assert.equal(finished.headers.get("docker-content-digest"), digest);
});

test("PUT may carry the last chunk with its Content-Range", async () => {
  const content = randomBytes(42);
  const digest = sha256(content);
  const started = await startUpload("uploads/last-chunk");
  const chunk1 = await registry.fetch(started.headers.get("location")!, {
    method: "PATCH",
    headers: { "Content-Range": "0-21" },
    body: content.subarray(0, 22),
  });
  assert.equal(chunk1.status, 202);
  const finished = await registry.fetch(`${chunk1.headers.get("location")}?digest=${digest}`, {
    method: "PUT",
    headers: { "Content-Range": "22-41", "Content-Length": "20" },
    body: content.subarray(22),
  });
  assert.equal(finished.status, 201);
  assert.equal(await blobStatus("uploads/last-chunk", digest), 200);
});

test("malformed or inconsistent chunk headers are refused", async () => {
  const started = await startUpload("uploads/bad-chunk");
  const location = started.headers.get("location")!;
  const malformed = await registry.fetch(location, {
    method: "PATCH",
    headers: { "Content-Range": "zero-ten" },
    body: "x",
  });
  assert.equal(malformed.status, 400);
  assert.equal(await errorCode(malformed), "BLOB_UPLOAD_INVALID");
  const wrongLength = await registry.fetch(location, {
    method: "PATCH",
    headers: { "Content-Range": "0-9", "Content-Length": "3" },
    body: "abc",
  });
  assert.equal(wrongLength.status, 400);
  assert.equal(await errorCode(wrongLength), "SIZE_INVALID");
  // The upload is still usable.
  const status = await registry.fetch(location);
  assert.equal(status.status, 204);
  assert.equal(status.headers.get("range"), "0-0");
});

test("PUT without a digest or with a wrong one is DIGEST_INVALID; a wrong one ends the upload", async () => {
  const started = await startUpload("uploads/bad-digest");
  const location = started.headers.get("location")!;
  const missing = await registry.fetch(location, { method: "PUT", body: "abc" });
  assert.equal(missing.status, 400);
  assert.equal(await errorCode(missing), "DIGEST_INVALID");

  const malformed = await registry.fetch(`${location}?digest=sha256:zzz`, { method: "PUT" });
  assert.equal(malformed.status, 400);
  assert.equal(await errorCode(malformed), "DIGEST_INVALID");

  const wrong = sha256("not abc");
  const mismatch = await registry.fetch(`${location}?digest=${wrong}`, {
    method: "PUT",
    body: "abc",
  });
  assert.equal(mismatch.status, 400);
  assert.equal(await errorCode(mismatch), "DIGEST_INVALID");
  assert.equal(await blobStatus("uploads/bad-digest", wrong), 404);
  assert.equal(await blobStatus("uploads/bad-digest", sha256("abc")), 404);
});

test("DELETE cancels an upload (204); an unknown upload is 404 BLOB_UPLOAD_UNKNOWN for every method", async () => {
  const started = await startUpload("uploads/cancel");
  const location = started.headers.get("location")!;
  const cancelled = await registry.fetch(location, { method: "DELETE" });
  assert.equal(cancelled.status, 204);
  for (const method of ["GET", "PATCH", "PUT", "DELETE"]) {
    const query = method === "PUT" ? `?digest=${sha256("")}` : "";
    const response = await registry.fetch(location + query, {
      method,
      body: method === "PATCH" ? "x" : undefined,
    });
    assert.equal(response.status, 404, method);
    assert.equal(await errorCode(response), "BLOB_UPLOAD_UNKNOWN", method);
  }
  const garbage = await registry.fetch("/v2/uploads/cancel/blobs/uploads/not..an.id");
  assert.equal(garbage.status, 404);
  assert.equal(await errorCode(garbage), "BLOB_UPLOAD_UNKNOWN");
});

test("cross-repository mount: 201 when the source (or, without `from`, the registry) has the blob, else a new upload (202)", async () => {
  const digest = await pushBlob(registry, "uploads/mount-source", "mounted content");

  const mounted = await registry.fetch(
    `/v2/uploads/mount-target/blobs/uploads/?mount=${digest}&from=uploads/mount-source`,
    { method: "POST" },
  );
  assert.equal(mounted.status, 201);
  assert.equal(mounted.headers.get("location"), `/v2/uploads/mount-target/blobs/${digest}`);
  assert.equal(mounted.headers.get("docker-content-digest"), digest);
  const blob = await registry.fetch(mounted.headers.get("location")!);
  assert.equal(blob.status, 200);
  assert.equal(await blob.text(), "mounted content");

  // Without `from`, any blob the registry stores is found (automatic content discovery).
  const anonymous = sha256("stored, never linked here");
  await pushBlob(registry, "uploads/mount-elsewhere", "stored, never linked here");
  const withoutFrom = await registry.fetch(
    `/v2/uploads/mount-anonymous/blobs/uploads/?mount=${anonymous}`,
    { method: "POST" },
  );
  assert.equal(withoutFrom.status, 201);
  assert.equal(
    withoutFrom.headers.get("location"),
    `/v2/uploads/mount-anonymous/blobs/${anonymous}`,
  );
  assert.equal(withoutFrom.headers.get("docker-content-digest"), anonymous);
  assert.equal(await blobStatus("uploads/mount-anonymous", anonymous), 200);

  const missing = sha256("never pushed");
  const notStored = await registry.fetch(
    `/v2/uploads/mount-other/blobs/uploads/?mount=${missing}`,
    { method: "POST" },
  );
  assert.equal(notStored.status, 202);
  assert.match(
    notStored.headers.get("location")!,
    /^\/v2\/uploads\/mount-other\/blobs\/uploads\/.+/,
  );

  const notThere = await registry.fetch(
    `/v2/uploads/mount-other/blobs/uploads/?mount=${missing}&from=uploads/mount-source`,
    { method: "POST" },
  );
  assert.equal(notThere.status, 202);
  assert.ok(notThere.headers.get("docker-upload-uuid"));

  const badSource = await registry.fetch(
    `/v2/uploads/mount-other/blobs/uploads/?mount=${digest}&from=NOT/valid`,
    { method: "POST" },
  );
  assert.equal(badSource.status, 202);
  assert.equal(await blobStatus("uploads/mount-other", digest), 404);
});

test("a client that disconnects mid-PATCH leaves a resumable upload", async () => {
  const content = randomBytes(200_000);
  const digest = sha256(content);
  const started = await startUpload("uploads/resume");
  const location = started.headers.get("location")!;

  // Send half of the declared body, then drop the connection.
  const sent = 100_000;
  await new Promise<void>((resolve) => {
    const request = httpRequest(`${registry.url}${location}`, {
      method: "PATCH",
      headers: {
        "Content-Length": String(content.length),
        "Content-Type": "application/octet-stream",
      },
    });
    request.on("error", () => resolve());
    request.write(content.subarray(0, sent), () => {
      setTimeout(() => {
        request.destroy();
        resolve();
      }, 50);
    });
  });

  // The server notices the disconnect and keeps what arrived; poll until the upload answers again.
  let offset = -1;
  for (let attempt = 0; attempt < 100 && offset <= 0; attempt++) {
    const status = await registry.fetch(location);
    if (status.status === 204) offset = Number(status.headers.get("range")!.split("-")[1]) + 1;
    else await status.arrayBuffer();
    if (offset <= 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(offset > 0 && offset <= sent, `resumable at ${offset}`);

  const rest = await registry.fetch(location, {
    method: "PATCH",
    headers: { "Content-Range": `${offset}-${content.length - 1}` },
    body: content.subarray(offset),
  });
  assert.equal(rest.status, 202);
  assert.equal(rest.headers.get("range"), `0-${content.length - 1}`);
  const finished = await registry.fetch(`${rest.headers.get("location")}?digest=${digest}`, {
    method: "PUT",
  });
  assert.equal(finished.status, 201);
  const blob = await registry.fetch(`/v2/uploads/resume/blobs/${digest}`);
  assert.deepEqual(Buffer.from(await blob.arrayBuffer()), content);
});
