import { test } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { ApiError, errorBody, errorStatus, type ErrorCode } from "./errors.js";
import { baseMediaType } from "../storage/index.js";
import {
  acceptedMediaTypes,
  parseContentRange,
  parsePage,
  parseRange,
  uploadRange,
} from "./protocol.js";

function rejectsWith(code: string, run: () => unknown): void {
  assert.throws(run, (error: unknown) => error instanceof ApiError && error.code === code);
}

test("parses Range headers against the blob size", () => {
  assert.equal(parseRange(undefined, 10), null);
  assert.deepEqual(parseRange("bytes=0-4", 10), { start: 0, end: 4 });
  assert.deepEqual(parseRange("bytes=5-", 10), { start: 5, end: 9 });
  assert.deepEqual(parseRange("bytes=3-100", 10), { start: 3, end: 9 });
  assert.deepEqual(parseRange("bytes=-3", 10), { start: 7, end: 9 });
  assert.deepEqual(parseRange("bytes=-30", 10), { start: 0, end: 9 });
  // Ignored: other units, several ranges, malformed.
  for (const header of ["items=0-1", "bytes=0-1,3-4", "bytes=a-b", "bytes=-"]) {
    assert.equal(parseRange(header, 10), null, header);
  }
  rejectsWith("RANGE_INVALID", () => parseRange("bytes=5-2", 10));
  rejectsWith("RANGE_INVALID", () => parseRange("bytes=10-", 10));
  rejectsWith("RANGE_INVALID", () => parseRange("bytes=-0", 10));
  try {
    parseRange("bytes=20-30", 10);
    assert.fail("expected a 416");
  } catch (error) {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 416);
    assert.deepEqual(error.headers, { "Content-Range": "bytes */10" });
  }
});

test("parses upload Content-Range", () => {
  assert.equal(parseContentRange(undefined), null);
  assert.deepEqual(parseContentRange("0-21"), { start: 0, end: 21 });
  assert.deepEqual(parseContentRange("bytes 22-41/42"), { start: 22, end: 41 });
  rejectsWith("BLOB_UPLOAD_INVALID", () => parseContentRange("22"));
  rejectsWith("BLOB_UPLOAD_INVALID", () => parseContentRange("a-b"));
});

test("describes an upload's progress as 0-<last byte>", () => {
  assert.equal(uploadRange(0), "0-0");
  assert.equal(uploadRange(1), "0-0");
  assert.equal(uploadRange(42), "0-41");
});

test("reads Accept media types from one or several headers", () => {
  const req = {
    headers: {
      accept:
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json;q=0.9,*/*",
    },
  } as unknown as IncomingMessage;
  assert.deepEqual(
    [...acceptedMediaTypes(req)],
    [
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json",
      "*/*",
    ],
  );
  assert.equal(acceptedMediaTypes({ headers: {} } as IncomingMessage).size, 0);
  assert.equal(baseMediaType("application/json; charset=utf-8"), "application/json");
  assert.equal(baseMediaType(undefined), "");
});

test("reads pagination parameters", () => {
  assert.deepEqual(parsePage(null), { n: undefined, last: undefined });
  assert.deepEqual(parsePage(new URLSearchParams("n=2&last=b")), { n: 2, last: "b" });
  assert.deepEqual(parsePage(new URLSearchParams("n=0")), { n: 0, last: undefined });
  rejectsWith("PAGINATION_NUMBER_INVALID", () => parsePage(new URLSearchParams("n=-1")));
  rejectsWith("PAGINATION_NUMBER_INVALID", () => parsePage(new URLSearchParams("n=x")));
});

test("maps every spec error code to its status and writes the envelope", () => {
  const expected: Partial<Record<ErrorCode, number>> = {
    BLOB_UNKNOWN: 404,
    BLOB_UPLOAD_INVALID: 400,
    BLOB_UPLOAD_UNKNOWN: 404,
    DIGEST_INVALID: 400,
    MANIFEST_BLOB_UNKNOWN: 400,
    MANIFEST_INVALID: 400,
    MANIFEST_UNKNOWN: 404,
    NAME_INVALID: 400,
    NAME_UNKNOWN: 404,
    SIZE_INVALID: 400,
    UNAUTHORIZED: 401,
    DENIED: 403,
    UNSUPPORTED: 405,
    TOOMANYREQUESTS: 429,
    TAG_INVALID: 400,
    RANGE_INVALID: 416,
  };
  for (const [code, status] of Object.entries(expected))
    assert.equal(errorStatus(code as ErrorCode), status, code);
  assert.equal(errorStatus("UNKNOWN"), 500);
  assert.deepEqual(
    JSON.parse(errorBody("NAME_UNKNOWN", "repository name not known", { name: "x" })),
    {
      errors: [
        { code: "NAME_UNKNOWN", message: "repository name not known", detail: { name: "x" } },
      ],
    },
  );
  assert.deepEqual(JSON.parse(errorBody("DENIED", "no")), {
    errors: [{ code: "DENIED", message: "no" }],
  });
});
