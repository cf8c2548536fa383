// The layout's parsers read back what its path builders write.

import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDigest } from "./digest.js";
import {
  isLayoutEntry,
  isRepositoryListing,
  parseBlobPath,
  parseDigestPath,
  parseUploadsPath,
  paths,
} from "./paths.js";

const SHA256 = parseDigest(`sha256:${"ab".repeat(32)}`);
const SHA512 = parseDigest(`sha512:${"cd".repeat(64)}`);

test("parses digests back from blob and link directories", () => {
  for (const digest of [SHA256, SHA512]) {
    assert.deepEqual(parseBlobPath(paths.blob(digest)), digest);
    assert.deepEqual(parseDigestPath(paths.layerLinkDirectory("a/b", digest)), digest);
    assert.deepEqual(parseDigestPath(paths.revision("a", digest)), digest);
    assert.deepEqual(parseDigestPath(paths.referrer("a", SHA256, digest)), digest);
  }
  assert.equal(parseBlobPath(`${paths.blobAlgorithm("sha256")}/ab/not-hex`), undefined);
  assert.equal(parseDigestPath(`${paths.layers("a")}/md5/${"0".repeat(32)}`), undefined);
});

test("names the repository of an _uploads directory and nothing else", () => {
  for (const name of ["a", "library/ubuntu", "a/b/c"]) {
    assert.equal(parseUploadsPath(paths.uploads(name)), name);
    assert.equal(parseUploadsPath(paths.upload(name, "id")), undefined);
    assert.equal(parseUploadsPath(paths.layers(name)), undefined);
  }
  assert.equal(parseUploadsPath(`${paths.repositoriesRoot()}/_uploads`), undefined);
  assert.equal(parseUploadsPath("/elsewhere/a/_uploads"), undefined);
});

test("tells a repository's directory and the layout's own entries", () => {
  assert.ok(isRepositoryListing(["_layers"]));
  assert.ok(isRepositoryListing(["nested", "_manifests"]));
  assert.ok(!isRepositoryListing(["_uploads", "nested"]));
  assert.ok(isLayoutEntry("_uploads"));
  assert.ok(!isLayoutEntry("app"));
});
