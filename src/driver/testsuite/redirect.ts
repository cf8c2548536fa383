// The shared driver suite, redirectURL: null or a URL that serves the content.

import assert from "node:assert/strict";
import type { Suite } from "./context.js";
import { assertSameBytes, randomContent } from "./support.js";

export function redirectTests(suite: Suite): void {
  const { test } = suite;

  test("redirectURL gives null or a URL that serves the content", async (s) => {
    const path = s.path("file");
    const content = randomContent(32);
    await suite.driver.putContent(path, content);
    const url = await suite.driver.redirectURL(path);
    if (url === null) return;
    assert.equal(typeof url, "string");
    const response = await fetch(url);
    assert.equal(response.status, 200, `GET ${url}`);
    assertSameBytes(new Uint8Array(await response.arrayBuffer()), content, "fetched content");

    const headURL = await suite.driver.redirectURL(path, { method: "HEAD", expiresIn: 300 });
    assert.ok(typeof headURL === "string", "a suite.driver giving GET URLs gives HEAD URLs too");
    const head = await fetch(headURL, { method: "HEAD" });
    assert.equal(head.status, 200, `HEAD ${headURL}`);
    assert.equal(head.headers.get("content-length"), "32");
  });
}
