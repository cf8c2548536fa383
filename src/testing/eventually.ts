// Test support: polling for what happens asynchronously (a log line, a health status).

import assert from "node:assert/strict";

/** Polls `condition` every 20 ms until it holds (at most `timeoutMs`, default 5 s). */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`condition not reached within ${timeoutMs / 1000} s`);
}
