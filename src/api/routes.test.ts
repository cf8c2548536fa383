import { test } from "node:test";
import assert from "node:assert/strict";
import { route } from "./routes.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

test("routes the base and catalog endpoints", () => {
  assert.deepEqual(route("/v2/"), { kind: "base", name: "", argument: "" });
  assert.deepEqual(route("/v2"), { kind: "base", name: "", argument: "" });
  assert.deepEqual(route("/v2/_catalog"), { kind: "catalog", name: "", argument: "" });
});

test("reads names with slashes from the right", () => {
  assert.deepEqual(route("/v2/a/b/c/manifests/latest"), {
    kind: "manifest",
    name: "a/b/c",
    argument: "latest",
  });
  assert.deepEqual(route(`/v2/library/blobs/x/blobs/${DIGEST}`), {
    kind: "blob",
    name: "library/blobs/x",
    argument: DIGEST,
  });
  assert.deepEqual(route("/v2/team/tags/list"), { kind: "tags", name: "team", argument: "" });
  assert.deepEqual(route("/v2/a/tags/list/tags/list"), {
    kind: "tags",
    name: "a/tags/list",
    argument: "",
  });
  assert.deepEqual(route(`/v2/a/b/referrers/${DIGEST}`), {
    kind: "referrers",
    name: "a/b",
    argument: DIGEST,
  });
});

test("routes upload start (with or without the trailing slash) and upload sessions", () => {
  assert.deepEqual(route("/v2/a/b/blobs/uploads/"), {
    kind: "uploadStart",
    name: "a/b",
    argument: "",
  });
  assert.deepEqual(route("/v2/a/blobs/uploads"), { kind: "uploadStart", name: "a", argument: "" });
  assert.deepEqual(route("/v2/a/b/blobs/uploads/0f2c-11"), {
    kind: "upload",
    name: "a/b",
    argument: "0f2c-11",
  });
  // `uploads` as a repository path component is not an upload session.
  assert.deepEqual(route(`/v2/x/uploads/blobs/${DIGEST}`), {
    kind: "blob",
    name: "x/uploads",
    argument: DIGEST,
  });
});

test("decodes a percent-encoded digest", () => {
  assert.equal(
    route(`/v2/a/manifests/sha256%3A${"b".repeat(64)}`)?.argument,
    `sha256:${"b".repeat(64)}`,
  );
});

test("returns null for paths that are no endpoint", () => {
  for (const path of [
    "/",
    "/v1/",
    "/v2/a",
    "/v2/a/manifests",
    "/v2/a/manifests/",
    "/v2/manifests/latest",
    "/v2/a/other/x",
    "/v2/a/uploads/x",
    "/v2//blobs/uploads/",
    "/v2/_catalog/x",
  ]) {
    assert.equal(route(path), null, path);
  }
});
