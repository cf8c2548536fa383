// The grammars the API checks requests with: repository names (and their length limit), tags,
// digests and upload ids.

import { test } from "node:test";
import assert from "node:assert/strict";
import { isValidDigest, isValidRepositoryName, isValidTag, isValidUploadId } from "./index.js";

test("validates names, tags, digests and upload ids with the spec's patterns", () => {
  for (const name of ["a", "library/ubuntu", "a-b/c.d/e__f", "a--b", "0/1/2"]) {
    assert.ok(isValidRepositoryName(name), name);
  }
  for (const name of ["", "A", "a/", "/a", "a//b", "a_-b", "a..b", "-a", `${"a".repeat(256)}`]) {
    assert.ok(!isValidRepositoryName(name), name);
  }
  for (const tag of ["latest", "v1.0", "_x", "A-b_c.d", "a".repeat(128)])
    assert.ok(isValidTag(tag), tag);
  for (const tag of ["", ".x", "-x", "a:b", "a".repeat(129), ".INVALID_MANIFEST_NAME"]) {
    assert.ok(!isValidTag(tag), tag);
  }
  assert.ok(isValidDigest(`sha256:${"0".repeat(64)}`));
  assert.ok(isValidDigest(`sha512:${"f".repeat(128)}`));
  for (const digest of [
    "sha256:totallywrong",
    `sha256:${"A".repeat(64)}`,
    `md5:${"0".repeat(32)}`,
    "x",
  ]) {
    assert.ok(!isValidDigest(digest), digest);
  }
  for (const id of ["9a1b2c3d-0000-4000-8000-000000000000", "a", "A_b-c", "x".repeat(128)]) {
    assert.ok(isValidUploadId(id), id);
  }
  for (const id of ["", "-a", "_a", "a.b", "a/b", "..", "x".repeat(129)]) {
    assert.ok(!isValidUploadId(id), id);
  }
});
