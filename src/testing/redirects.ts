// Test support: a registry whose driver gives URLs answers blob GET and HEAD with a 307 to the
// backend; this follows both with plain fetch and checks what comes back.

import assert from "node:assert/strict";
import { sha256, type Content } from "./images.js";

/**
 * Asserts that `blobUrl` (a registry's `/v2/<name>/blobs/<digest>`) answers GET and HEAD with a
 * 307, that the GET's Location gives `blob`'s bytes and the HEAD's its size, and returns the GET's
 * Location for checks of the backend's own (key, signature).
 */
export async function assertBlobRedirects(blobUrl: string, blob: Content): Promise<URL> {
  const answer = await fetch(blobUrl, { redirect: "manual" });
  assert.equal(answer.status, 307);
  assert.equal(answer.headers.get("docker-content-digest"), blob.digest);
  const location = new URL(answer.headers.get("location") ?? "");
  const fetched = await fetch(location);
  assert.equal(fetched.status, 200);
  assert.equal(sha256(new Uint8Array(await fetched.arrayBuffer())), blob.digest);

  const head = await fetch(blobUrl, { method: "HEAD", redirect: "manual" });
  assert.equal(head.status, 307);
  const headed = await fetch(head.headers.get("location")!, { method: "HEAD" });
  assert.equal(headed.status, 200);
  assert.equal(headed.headers.get("content-length"), String(blob.size));
  return location;
}
