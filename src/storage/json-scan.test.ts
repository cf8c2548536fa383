import assert from "node:assert/strict";
import { test } from "node:test";
import { jsonLimitExceeded, MAX_JSON_DEPTH } from "./json-scan.js";

const scan = (text: string) => jsonLimitExceeded(Buffer.from(text));

test("jsonLimitExceeded counts nesting outside strings only, escapes included", () => {
  const nested = (n: number) => "[".repeat(n) + "]".repeat(n);
  assert.equal(scan(nested(MAX_JSON_DEPTH)), undefined);
  assert.match(scan(nested(MAX_JSON_DEPTH + 1))!, /nesting deeper than 64/);
  assert.equal(scan(`{"a":"${"[".repeat(1000)}"}`), undefined);
  assert.equal(scan(`{"a":"\\"${"[".repeat(1000)}"}`), undefined);
  assert.match(scan(`{"a":"\\\\"${"[".repeat(100)}`)!, /nesting/);
  // Nesting after many sibling containers is still the depth, not the count.
  assert.equal(scan(`[${Array.from({ length: 1000 }, () => nested(10)).join(",")}]`), undefined);
  // Malformed JSON is left to JSON.parse.
  assert.equal(scan(`{"a":"unterminated`), undefined);
});

test("jsonLimitExceeded passes the densest real manifest of 4 MiB", () => {
  const layers = Array.from({ length: 26_000 }, (_, i) => ({
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    digest: `sha256:${i.toString(16).padStart(64, "0")}`,
    size: 123456 + i,
  }));
  const manifest = JSON.stringify({ schemaVersion: 2, config: layers[0], layers });
  assert.ok(manifest.length > 3.8 * 1024 * 1024 && manifest.length <= 4 * 1024 * 1024);
  assert.equal(scan(manifest), undefined);
});
